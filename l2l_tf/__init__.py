"""l2l_tf: learning to learn in TensorFlow 2.

Task families (`l2l_tf.problems`) sample tasks whose losses are pure functions of a list of
parameter tensors; update rules (`l2l_tf.optimizers`) turn gradients into updates with explicit
state; meta-learners (`l2l_tf.meta`) decide what is learned and how its outer gradient is
estimated; `l2l_tf.experiments` builds each experiment on them, and `l2l_tf.run.loop` is the
one training loop the command-line mains run.
"""

__version__ = "0.1.0"
