"""The inner loop: optimizee steps under an update rule.

`optimizee_step` is the single place where a rule meets a task: it is used by meta-training
(inside the meta-gradient tape) and by evaluation (with no tape), so both run exactly the same
arithmetic.
"""

import tensorflow as tf

from l2l_tf import seeding
from l2l_tf.errors import UserError
from l2l_tf.optimizers.base import UpdateRule, apply_updates
from l2l_tf.problems import signals as signals_lib
from l2l_tf.problems.base import TaskFamily


def optimizee_step(
    family: TaskFamily,
    rule: UpdateRule,
    params,
    rule_state,
    task,
    batch,
    second_derivatives: bool = False,
):
    """One step theta_{t+1} = theta_t + rule(grad f(theta_t)).

    Args:
      family, rule: the problem and the update rule.
      params, rule_state: theta_t and the rule's state.
      task, batch: the task and this step's minibatch.
      second_derivatives: if False (the paper's default), the optimizee's gradient is treated as
        a constant input of the rule when meta-gradients are taken: d grad / d phi is dropped, so
        no Hessian of the optimizee is ever formed. If True, it is kept (second order).

    Returns:
      (member_losses at theta_t, params theta_{t+1}, new rule_state).
    """
    if getattr(rule, "needs_signals", False):
        return _signal_step(family, rule, params, rule_state, task, batch, second_derivatives)
    with tf.GradientTape() as tape:
        tape.watch(params)
        member_losses = family.member_losses(params, task, batch)
        loss = tf.reduce_sum(member_losses)
    grads = tape.gradient(loss, params)
    if not second_derivatives:
        grads = [tf.stop_gradient(g) for g in grads]
    updates, rule_state = rule.step(grads, rule_state, params)
    return member_losses, apply_updates(params, updates), rule_state


def _signal_step(family, rule, params, rule_state, task, batch, second_derivatives):
    """`optimizee_step` for a rule that sets `needs_signals` (a synaptic rule): it also gets
    each parameter's local signals (pre, post, mod; problems/signals.py) from the same backward
    pass. Like the gradient, the signals are constants of the meta-gradient unless
    `second_derivatives` is True: the meta-gradient then flows only through the parameters that
    the updates produce, as for gradient-based rules."""
    if not signals_lib.provides_signals(family):
        raise UserError(
            f"rule {rule.name!r} needs local signals, which task family {family.name!r} "
            "does not provide (no dense_layers)"
        )
    member_losses, grads, signals = signals_lib.losses_grads_signals(family, params, task, batch)
    if not second_derivatives:
        grads = [tf.stop_gradient(g) for g in grads]
        signals = tf.nest.map_structure(tf.stop_gradient, signals)
    updates, rule_state = rule.step(grads, rule_state, params, signals=signals)
    return member_losses, apply_updates(params, updates), rule_state


def make_trajectory_fn(
    family: TaskFamily, rule: UpdateRule, num_steps: int, jit_compile: bool = False
):
    """A compiled function running `rule` for `num_steps` steps on one task.

    The returned function maps an episode seed (shape [2]) to a pair: the member losses at every
    step, shape [num_steps + 1, num_members] (row t is the loss at theta_t), and the family's
    `held_out_metrics` of the final parameters ({name: [num_members]}, empty for families
    without held-out data). Tasks, initial parameters and minibatches all derive from the seed,
    so calling it with many seeds never retraces.
    """

    @tf.function(jit_compile=jit_compile)
    def trajectory(seed):
        task_seed, init_seed, batch_seed = seeding.episode_seeds(seed)
        task = family.sample(task_seed)
        params = family.init_params(task, init_seed)
        state = rule.init(params)
        losses = tf.TensorArray(params[0].dtype, size=num_steps + 1)
        for t in tf.range(num_steps):
            batch = family.batch(task, seeding.fold_in(batch_seed, t))
            member_losses, params, state = optimizee_step(family, rule, params, state, task, batch)
            losses = losses.write(t, member_losses)
        batch = family.batch(task, seeding.fold_in(batch_seed, num_steps))
        losses = losses.write(num_steps, family.member_losses(params, task, batch))
        return losses.stack(), family.held_out_metrics(params, task)

    return trajectory
