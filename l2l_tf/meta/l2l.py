"""Learning to learn by gradient descent by gradient descent (Andrychowicz et al., 2016).

The meta-parameters are the variables of a learned update rule. One meta-step unrolls the
optimizee for `unroll_length` steps from the current parameters and rule state, takes the
meta-loss

    L(phi) = sum_{t=1..T} w_t * mean_members f(theta_t),   w_t = 1,

(or, with `loss_transform="log"`, the same sum of log f(theta_t); see `LOSS_TRANSFORMS`),
backpropagates it through the unroll (truncated BPTT: the carried-in parameters and state are
constants), clips the meta-gradient by global norm and applies the meta-optimizer. The new
parameters and rule state are returned, so the truncation happens at the call boundary and the
Python loop outside only sequences unrolls.
"""

import math

import tensorflow as tf

from l2l_tf import seeding
from l2l_tf.errors import UserError
from l2l_tf.meta.optimizer import MetaOptimizer
from l2l_tf.optimizers.base import UpdateRule
from l2l_tf.problems.base import TaskFamily
from l2l_tf.unroll import optimizee_step

# How each step's loss enters the meta-loss. "none" is the paper's sum of losses (w_t = 1).
# "log" sums log-losses instead (as Wichrowska et al., 2017 did): d log f = df / f weighs a
# relative improvement the same at every stage, so the late steps of an episode, whose losses
# are small, are not drowned by the large early ones. This matters when the final loss is the
# score (the MNIST bar), because a plain sum rewards fast early progress above all.
LOSS_TRANSFORMS = ("none", "log")


def check_loss_transform(loss_transform) -> None:
    """Raises UserError unless `loss_transform` is one of LOSS_TRANSFORMS."""
    if loss_transform not in LOSS_TRANSFORMS:
        raise UserError(
            f"meta.loss_transform must be one of {list(LOSS_TRANSFORMS)}, got {loss_transform!r}"
        )


class TruncatedBPTT:
    """Meta-trains a learned `UpdateRule` by truncated backpropagation through time."""

    def __init__(
        self,
        family: TaskFamily,
        rule: UpdateRule,
        meta_optimizer: MetaOptimizer,
        unroll_length: int,
        second_derivatives: bool = False,
        clip_grad_norm: float | None = None,
        jit_compile: bool = False,
        static_unroll: bool = False,
        recompute: bool = False,
        loss_transform: str = "none",
    ):
        """Args:
        family, rule: the task family and the learned rule being meta-trained.
        meta_optimizer: applies the meta-gradient to the rule's variables.
        unroll_length: optimizee steps per meta-update (the truncation length).
        second_derivatives: keep d(optimizee gradient)/d(meta-params) (the paper drops it).
        clip_grad_norm: clip the meta-gradient to this global norm (None: no clipping).
        jit_compile: compile the meta-step with XLA.
        static_unroll: unroll the steps in the graph (a Python loop at trace time) instead of
          a `tf.while_loop`; a larger graph, but no per-iteration loop overhead.
        recompute: rematerialize the unroll in the backward pass, segment by segment (about
          sqrt(unroll_length) steps each): only segment boundaries are stored, so memory grows
          like sqrt(unroll_length) instead of linearly, for about one extra forward pass.
        loss_transform: how a step's loss enters the meta-loss, one of `LOSS_TRANSFORMS`.
        """
        check_loss_transform(loss_transform)
        self.loss_transform = loss_transform

        self.family = family
        self.rule = rule
        self.meta_optimizer = meta_optimizer
        self.unroll_length = int(unroll_length)
        self.second_derivatives = bool(second_derivatives)
        self.clip_grad_norm = clip_grad_norm
        self.static_unroll = bool(static_unroll)
        self.recompute = bool(recompute)
        self.trace_count = 0
        self.meta_step = tf.function(self._meta_step, jit_compile=jit_compile)

    def unroll(self, params, rule_state, task, batch_seed, step0):
        """Runs `unroll_length` optimizee steps (traceable; differentiable w.r.t. the rule).

        Args:
          params, rule_state: theta and the rule state at the start of the unroll.
          task: the task being optimized.
          batch_seed: the episode's minibatch seed; step t uses fold_in(batch_seed, step0 + t).
          step0: index of the first step of this unroll within the episode (int tensor).

        Returns:
          (meta_loss, params, rule_state) after the unroll.
        """
        meta_loss, params, rule_state = self._steps(
            params, rule_state, task, batch_seed, step0, 0, self.unroll_length
        )
        batch = self.family.batch(task, seeding.fold_in(batch_seed, step0 + self.unroll_length))

        meta_loss += self.step_objective(self.family.member_losses(params, task, batch))
        return meta_loss, params, rule_state

    def step_objective(self, member_losses):
        """One step's term of the meta-loss: the mean over members of the transformed loss."""
        if self.loss_transform == "log":
            member_losses = tf.math.log(member_losses)
        return tf.reduce_mean(member_losses)

    def _segments(self) -> list[tuple[int, int]]:
        """(first step, number of steps) of the recomputed segments, about sqrt(T) each."""
        size = max(1, round(math.sqrt(self.unroll_length)))
        return [(s, min(size, self.unroll_length - s)) for s in range(0, self.unroll_length, size)]

    def _steps(self, params, rule_state, task, batch_seed, step0, first, count):
        """`count` optimizee steps from step `first` of the unroll.

        Returns:
          (sum of the mean member losses at theta_t for these t except t = 0, params, state).
          f(theta_0) does not depend on the meta-parameters, so it is left out of the meta-loss.
        """
        loss_sum = tf.zeros([], params[0].dtype)
        steps = (
            range(first, first + count) if self.static_unroll else tf.range(first, first + count)
        )
        for t in steps:
            batch = self.family.batch(task, seeding.fold_in(batch_seed, step0 + t))
            member_losses, params, rule_state = optimizee_step(
                self.family, self.rule, params, rule_state, task, batch, self.second_derivatives
            )
            weight = tf.cast(t > 0, loss_sum.dtype)
            loss_sum += weight * self.step_objective(member_losses)
        return loss_sum, params, rule_state

    def meta_gradient(self, params, rule_state, task, batch_seed, step0):
        """(meta_loss, grads w.r.t. the rule's trainable variables, params, rule_state)."""
        if self.recompute:
            return self._meta_gradient_recompute(params, rule_state, task, batch_seed, step0)
        variables = self.rule.trainable_variables
        with tf.GradientTape() as tape:
            meta_loss, params, rule_state = self.unroll(params, rule_state, task, batch_seed, step0)
        grads = tape.gradient(meta_loss, variables)
        grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables)]
        return meta_loss, grads, params, rule_state

    def _meta_gradient_recompute(self, params, rule_state, task, batch_seed, step0):
        """The same meta-gradient, rematerialized segment by segment.

        The forward pass runs with no meta-gradient tape and keeps only each segment's starting
        params and state. The backward pass then goes through the segments in reverse: each is
        recomputed under its own tape and its vector-Jacobian product with the incoming
        gradient gives the gradient for the previous segment and for the meta-parameters. At
        any moment only one segment's intermediates are alive.
        """
        variables = self.rule.trainable_variables
        segments = self._segments()
        starts = []
        meta_loss = tf.zeros([], params[0].dtype)
        for first, count in segments:
            starts.append((params, rule_state))
            loss, params, rule_state = self._steps(
                params, rule_state, task, batch_seed, step0, first, count
            )
            meta_loss += loss
        batch = self.family.batch(task, seeding.fold_in(batch_seed, step0 + self.unroll_length))
        with tf.GradientTape() as tape:
            tape.watch(params)
            final = self.step_objective(self.family.member_losses(params, task, batch))

        meta_loss += final
        carry = tf.nest.flatten(
            (tape.gradient(final, params), tf.nest.map_structure(tf.zeros_like, rule_state))
        )
        grads = [tf.zeros_like(v) for v in variables]
        for (first, count), start in zip(reversed(segments), reversed(starts)):
            # The dependency on the incoming gradient orders the recomputation into the
            # backward pass (and keeps it from being merged with the forward one).
            with tf.control_dependencies(carry):
                inputs = [tf.identity(t) for t in tf.nest.flatten(start)]
            p0, s0 = tf.nest.pack_sequence_as(start, inputs)
            with tf.GradientTape() as tape:
                tape.watch(inputs)
                loss, p1, s1 = self._steps(p0, s0, task, batch_seed, step0, first, count)
            out = tape.gradient(
                [loss, *tf.nest.flatten((p1, s1))],
                inputs + list(variables),
                output_gradients=[tf.ones_like(loss), *carry],
                unconnected_gradients=tf.UnconnectedGradients.ZERO,
            )
            carry = out[: len(inputs)]
            grads = [g + d for g, d in zip(grads, out[len(inputs) :])]
        return meta_loss, grads, params, rule_state

    # The estimator interface of the training loop (`experiments/l2l/training.py`): an
    # episode's *carry* is what the estimator keeps between truncations. For truncated BPTT it
    # is the optimizee's (params, rule_state); ES and PES (`meta/es.py`) carry their particles.

    def start(self, params, rule_state):
        """The carry at the start of an episode from theta_0 and the rule's initial state."""
        return params, rule_state

    def advance(self, carry, task, batch_seed, step0):
        """One meta-update on the truncation starting at step `step0`: (new carry, metrics)."""
        params, rule_state, metrics = self.meta_step(*carry, task, batch_seed, step0)
        return (params, rule_state), metrics

    def _meta_step(self, params, rule_state, task, batch_seed, step0):
        """One compiled meta-update. Non-finite meta-losses or gradients are skipped."""
        self.trace_count += 1  # Python side effect: runs once per trace, not per call.
        meta_loss, grads, params, rule_state = self.meta_gradient(
            params, rule_state, task, batch_seed, step0
        )
        return params, rule_state, self.apply_meta_gradient(meta_loss, grads)

    def apply_meta_gradient(self, meta_loss, grads) -> dict:
        """Clips and applies a meta-gradient unless it or the meta-loss is non-finite.

        Returns:
          The meta-step's metrics: meta_loss, mean_loss (per step), grad_norm, skipped.
        """
        grad_norm, finite = self.meta_optimizer.apply_if_finite(
            meta_loss, grads, self.clip_grad_norm
        )
        metrics = {
            "meta_loss": meta_loss,
            "mean_loss": meta_loss / self.unroll_length,
            "grad_norm": grad_norm,
            "skipped": tf.logical_not(finite),
        }
        return metrics
