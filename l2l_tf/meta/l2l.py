"""Learning to learn by gradient descent by gradient descent (Andrychowicz et al., 2016).

The meta-parameters are the variables of a learned update rule. One meta-step unrolls the
optimizee for `unroll_length` steps from the current parameters and rule state, takes the
meta-loss

    L(phi) = sum_{t=1..T} w_t * mean_members f(theta_t),   w_t = 1,

backpropagates it through the unroll (truncated BPTT: the carried-in parameters and state are
constants), clips the meta-gradient by global norm and applies the meta-optimizer. The new
parameters and rule state are returned, so the truncation happens at the call boundary and the
Python loop outside only sequences unrolls.
"""

import tensorflow as tf

from l2l_tf import seeding
from l2l_tf.meta.optimizer import MetaOptimizer
from l2l_tf.optimizers.base import UpdateRule
from l2l_tf.problems.base import TaskFamily
from l2l_tf.unroll import optimizee_step


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
    ):
        self.family = family
        self.rule = rule
        self.meta_optimizer = meta_optimizer
        self.unroll_length = int(unroll_length)
        self.second_derivatives = bool(second_derivatives)
        self.clip_grad_norm = clip_grad_norm
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
        meta_loss = tf.zeros([], params[0].dtype)
        for t in tf.range(self.unroll_length):
            batch = self.family.batch(task, seeding.fold_in(batch_seed, step0 + t))
            member_losses, params, rule_state = optimizee_step(
                self.family, self.rule, params, rule_state, task, batch, self.second_derivatives
            )
            # f(theta_0) does not depend on the meta-parameters; it is left out of the sum.
            if t > 0:
                meta_loss += tf.reduce_mean(member_losses)
        batch = self.family.batch(task, seeding.fold_in(batch_seed, step0 + self.unroll_length))
        meta_loss += tf.reduce_mean(self.family.member_losses(params, task, batch))
        return meta_loss, params, rule_state

    def meta_gradient(self, params, rule_state, task, batch_seed, step0):
        """(meta_loss, grads w.r.t. the rule's trainable variables, params, rule_state)."""
        variables = self.rule.trainable_variables
        with tf.GradientTape() as tape:
            meta_loss, params, rule_state = self.unroll(params, rule_state, task, batch_seed, step0)
        grads = tape.gradient(meta_loss, variables)
        grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables)]
        return meta_loss, grads, params, rule_state

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
        grad_norm = tf.linalg.global_norm(grads)
        finite = tf.math.is_finite(meta_loss) & tf.math.is_finite(grad_norm)
        if self.clip_grad_norm:
            grads, _ = tf.clip_by_global_norm(grads, self.clip_grad_norm, use_norm=grad_norm)
        if finite:
            self.meta_optimizer.apply(grads)
        metrics = {
            "meta_loss": meta_loss,
            "mean_loss": meta_loss / self.unroll_length,
            "grad_norm": grad_norm,
            "skipped": tf.logical_not(finite),
        }
        return metrics
