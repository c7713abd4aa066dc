"""Local signals at every synapse of a dense network: what a synaptic learning rule sees.

A learned synaptic rule (Bengio, Bengio and Cloutier, 1991; `optimizers/synaptic.py`) changes a
weight w_ij from unit j to unit i using only quantities available at that synapse: the
presynaptic activity, the postsynaptic activity, the weight itself and a modulatory (error)
signal delivered to unit i. For a dense layer a = x W + b, y = act(a), with a leading members
axis and a batch axis, the signals of the layer's two parameter tensors are

    W:  pre = x            [members, B, n_in]    post = y  [members, B, n_out]   mod = e
    b:  pre = 1            [members, B, 1]       post = y                        mod = e

    e = -B * dL/da         [members, B, n_out]

where L is the optimizee's objective (the sum over members of each member's batch-mean loss).
For a batch-mean loss, e_b is example b's own error -dl_b/da_b; for the output layer of a
sigmoid unit with binary cross-entropy, or of a linear unit with 0.5 * squared error, it is
target - output, and for hidden layers it is the backpropagated error. The factor B makes the
batch mean of pre_j * mod_i exactly minus the gradient, mean_b x_bj e_bi = -dL/dW_ij, so the
rule family contains gradient descent: the delta-rule term alone at rate lr is SGD at rate lr.
"Post" of the output layer is the family's output activity (sigmoid or softmax probabilities,
or the linear output).

A family provides signals by implementing `dense_layers(params, task, batch)`, returning its
member losses and one `DenseLayer` per layer for parameters ordered [W_1, b_1, ..., W_L, b_L];
`losses_grads_signals` then takes the gradients and the errors from one backward pass
(`problems.mlp.mlp_layers` is the MLP forward pass that reports the layers).
"""

from typing import NamedTuple

import tensorflow as tf


class DenseLayer(NamedTuple):
    """The activities of one dense layer on a batch (each [members, B, units])."""

    inputs: tf.Tensor  # x, the presynaptic activity
    preactivation: tf.Tensor  # a = x W + b
    outputs: tf.Tensor  # y = act(a), the postsynaptic activity


class Signals(NamedTuple):
    """The local signals of one parameter tensor (see the module docstring)."""

    pre: tf.Tensor  # [members, B, n_in] (n_in = 1 for a bias)
    post: tf.Tensor  # [members, B, n_out]
    mod: tf.Tensor  # [members, B, n_out]


def provides_signals(family) -> bool:
    """Whether `family` (an instance or a class) implements `dense_layers`."""
    return callable(getattr(family, "dense_layers", None))


def losses_grads_signals(family, params: list, task, batch):
    """Member losses, gradients and local signals of `params` on `batch`, in one backward pass.

    Returns:
      (member losses [members], grads (the structure of params), [Signals per parameter]).
    """
    with tf.GradientTape() as tape:
        tape.watch(params)
        member_losses, layers = family.dense_layers(params, task, batch)
        loss = tf.reduce_sum(member_losses)
    preactivations = [layer.preactivation for layer in layers]
    grads, d_pre = tape.gradient(loss, (params, preactivations))
    signals = []
    for layer, d in zip(layers, d_pre):
        batch_size = layer.inputs.shape[1]
        mod = -tf.cast(batch_size, d.dtype) * d
        ones = tf.ones_like(layer.inputs[..., :1])
        signals += [Signals(layer.inputs, layer.outputs, mod), Signals(ones, layer.outputs, mod)]
    return member_losses, grads, signals
