"""Implicit MAML (Rajeswaran, Finn, Kakade and Levine, 2019).

The inner problem is proximally regularized toward the initialization theta,

    phi_i(theta) = argmin_phi  L_support_i(phi) + (lambda / 2) ||phi - theta||^2,

approximately solved by `num_inner_steps` of the inner rule started at theta. At the optimum,
the implicit function theorem gives d phi_i / d theta = (I + H_i / lambda)^{-1} with
H_i = hess L_support_i(phi_i), so the meta-gradient of L_query_i(phi_i) is

    g_i = (I + H_i / lambda)^{-1} grad L_query_i(phi_i)          (the paper's equation (6)),

computed without differentiating through the inner loop: `cg_steps` iterations of conjugate
gradient solve (I + H_i / lambda) v = grad L_query_i(phi_i) using only Hessian-vector products
(the paper's algorithm 2). Every member of the meta-batch runs its own CG, vectorized.
"""

from typing import Any, NamedTuple

import tensorflow as tf

from l2l_tf.meta.base import MetaLearner, member_dot, per_member
from l2l_tf.problems.base import TaskFamily


class ProximalTask(NamedTuple):
    task: Any
    anchor: list  # the point each member is pulled toward (theta, tiled)


class Proximal(TaskFamily):
    """A family's loss plus (lambda / 2) ||params - anchor||^2 per member."""

    def __init__(self, family: TaskFamily, lam: float):
        self.family = family
        self.lam = float(lam)
        self.name = f"proximal_{family.name}"

    @property
    def num_members(self) -> int:
        return self.family.num_members

    def member_losses(self, params, task: ProximalTask, batch) -> tf.Tensor:
        diff = [p - a for p, a in zip(params, task.anchor)]
        return self.family.member_losses(params, task.task, batch) + 0.5 * self.lam * member_dot(
            diff, diff
        )


def conjugate_gradient(matvec, b: list[tf.Tensor], num_steps: int) -> list[tf.Tensor]:
    """Solves A x = b for every member at once by `num_steps` CG iterations from x = 0.

    A member whose search direction meets non-positive curvature (p^T A p <= 0, possible when
    the Hessian of a non-convex loss is indefinite) stops there and keeps its current iterate,
    as truncated CG does; otherwise a near-singular step would blow the solution up.

    Args:
      matvec: v -> A v on parameter lists (A symmetric, block-diagonal over members).
      b: the right-hand side, a parameter list with a leading member axis.
      num_steps: CG iterations (exact after as many steps as one member has coordinates, if A
        is positive definite).

    Returns:
      x, the approximate solution (same structure as b).
    """
    x = [tf.zeros_like(t) for t in b]
    r = list(b)
    p = list(b)
    rs = member_dot(r, r)
    active = tf.ones_like(rs, dtype=tf.bool)
    for _ in range(num_steps):
        ap = matvec(p)
        curvature = member_dot(p, ap)
        active &= curvature > 0
        alpha = tf.where(active, tf.math.divide_no_nan(rs, curvature), tf.zeros_like(rs))
        x = [xi + per_member(alpha, pi) * pi for xi, pi in zip(x, p)]
        r = [ri - per_member(alpha, ai) * ai for ri, ai in zip(r, ap)]
        rs_new = member_dot(r, r)
        beta = tf.math.divide_no_nan(rs_new, rs)
        p = [ri + per_member(beta, pi) * pi for ri, pi in zip(r, p)]
        rs = rs_new
    return x


class IMAML(MetaLearner):
    """iMAML: proximal inner problem, implicit meta-gradient by conjugate gradient."""

    second_order = False

    def __init__(self, family, init_params, inner_rule, num_inner_steps, lam=1.0, cg_steps=5, **kw):
        """See `MetaLearner`; `lam` is lambda, `cg_steps` the CG iterations per meta-gradient."""
        super().__init__(family, init_params, inner_rule, num_inner_steps, **kw)
        self.lam = float(lam)
        self.cg_steps = int(cg_steps)
        self.proximal = Proximal(family, lam)

    def with_family(self, family):
        view = super().with_family(family)
        view.proximal = Proximal(family, self.lam)
        return view

    def inner_problem(self, task, params0):
        anchor = [tf.stop_gradient(p) for p in params0]
        return self.proximal, ProximalTask(task=task, anchor=anchor)

    def hessian_vector_product(self, params, task, support, vector):
        """H v per member, H the Hessian of the (unregularized) support loss at `params`."""
        with tf.GradientTape() as outer:
            outer.watch(params)
            with tf.GradientTape() as inner:
                inner.watch(params)
                loss = tf.reduce_sum(self.family.member_losses(params, task, support))
            grads = inner.gradient(loss, params)
            # Members do not interact, so one product of the summed loss is every member's H_i v_i.
            dot = tf.add_n([tf.reduce_sum(g * tf.stop_gradient(v)) for g, v in zip(grads, vector)])
        return outer.gradient(dot, params)

    def implicit_grad(self, params, task, support, query):
        """(query losses [members], v_i = (I + H_i / lambda)^{-1} grad L_query_i(phi_i))."""
        params = [tf.stop_gradient(p) for p in params]
        with tf.GradientTape() as tape:
            tape.watch(params)
            query_losses = self.family.member_losses(params, task, query)
            total = tf.reduce_sum(query_losses)
        g = tape.gradient(total, params)

        def matvec(v):
            hv = self.hessian_vector_product(params, task, support, v)
            return [vi + hvi / self.lam for vi, hvi in zip(v, hv)]

        return query_losses, conjugate_gradient(matvec, g, self.cg_steps)

    def outer_grad(self, task, support, query):
        params = self.adapt(task, support)
        query_losses, v = self.implicit_grad(params, task, support, query)
        # The meta-loss is the mean over members, hence the mean of the per-member gradients.
        return tf.reduce_mean(query_losses), [tf.reduce_mean(vi, axis=0) for vi in v]
