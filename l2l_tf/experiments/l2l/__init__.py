"""The learned optimizer (Andrychowicz et al., 2016): a learned update rule meta-trained by
truncated BPTT on sampled tasks, evaluated against hand-designed rules with tuned rates."""

from l2l_tf.experiments.l2l.evaluation import evaluate
from l2l_tf.experiments.l2l.training import train
from l2l_tf.experiments.l2l.validation import validate

__all__ = ["evaluate", "train", "validate"]
