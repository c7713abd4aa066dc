"""Evolution-strategies meta-gradients: truncated antithetic ES and PES (Vicol et al., 2021).

Both estimators treat a truncation of the inner loop as a black box. The rule's weights phi
(flattened, dimension D) are perturbed by antithetic pairs +eps_i, -eps_i, eps_i ~ N(0, sigma^2 I),
i = 1..num_pairs, each *particle* runs the truncation with its perturbed weights, and the
meta-gradient is estimated from the particles' meta-losses alone:

    g = sum_i x_i (L(phi + eps_i) - L(phi - eps_i)) / (2 num_pairs sigma^2),

with x_i = eps_i for truncated ES and x_i = xi_i (the perturbations a particle accumulated over
the episode so far) for PES. The meta-loss L of a truncation is exactly TruncatedBPTT's (the
sum of the step objectives over its steps, `loss_transform` included), computed by
`TruncatedBPTT.unroll` on the rule with perturbed weights, so the inner loop is
`l2l_tf.unroll.optimizee_step` here as everywhere. No backpropagation through the unroll: the
memory does not grow with `unroll_length`, second-order effects are included for free, and a
chaotic or exploding unroll does not explode the estimate (ES estimates the gradient of the
Gaussian-smoothed meta-loss E L(phi + eps), which is smooth even where L is not).

The rule must be written on explicit weights (`rule.weights`, `rule.apply(weights, ...)`, as
`MLPRule`): a perturbed particle runs `rule.apply` with perturbed weight tensors and never
touches the rule's variables. The particles of one meta-step run together under
`tf.vectorized_map`, so the graph and the tracing time do not grow with `num_pairs`.

Perturbations come from a stateless seed derived from the episode's minibatch seed and the
truncation's first step, so runs are reproducible and a resumed run draws the same noise.
"""

import math
import numbers

import tensorflow as tf

from l2l_tf import seeding
from l2l_tf.errors import UserError
from l2l_tf.meta.l2l import TruncatedBPTT, check_loss_transform
from l2l_tf.meta.optimizer import MetaOptimizer
from l2l_tf.optimizers.base import UpdateRule
from l2l_tf.problems.base import TaskFamily

# The noise of the truncation starting at step s uses fold_in(fold_in(batch_seed, -1), s): step
# index -1 never names a minibatch (those are fold_in(batch_seed, t), t >= 0).
NOISE_INDEX = -1


class PerturbedRule(UpdateRule):
    """`rule` run with the weight tensors `weights` (in `rule.weights` order) in place of its
    variables."""

    def __init__(self, rule: UpdateRule, weights):
        super().__init__(name="perturbed_rule")
        self.base = rule
        self.perturbed_weights = list(weights)

    def init(self, params):
        return self.base.init(params)

    def step(self, grads, state, params):
        return self.base.apply(self.perturbed_weights, grads, state, params)


def _check_positive_int(field: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise UserError(f"meta.{field} must be a positive integer, got {value!r}")
    return int(value)


def _check_positive_number(field: str, value) -> float:
    numeric = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not numeric or not 0 < value < math.inf:
        raise UserError(f"meta.{field} must be positive and finite, got {value!r}")
    return float(value)


class _EvolutionStrategy:
    """What AntitheticES and PES share: arguments, noise, the truncation loss, the update."""

    name = "es"

    def __init__(
        self,
        family: TaskFamily,
        rule: UpdateRule,
        meta_optimizer: MetaOptimizer,
        unroll_length: int,
        num_pairs: int = 4,
        sigma: float = 0.01,
        clip_grad_norm: float | None = None,
        loss_transform: str = "none",
        jit_compile: bool = False,
    ):
        """Args:
        family, rule: the task family and the learned rule being meta-trained; the rule must
          have `weights` (its meta-parameters in order) and `apply(weights, grads, state,
          params)`.
        meta_optimizer: applies the meta-gradient to the rule's variables (it must update
          exactly `rule.weights`).
        unroll_length: optimizee steps per meta-update (the truncation length).
        num_pairs: antithetic pairs of perturbations per meta-update (2 * num_pairs particles).
        sigma: standard deviation of each perturbation coordinate.
        clip_grad_norm: clip the meta-gradient to this global norm (None or 0: no clipping).
        loss_transform: how a step's loss enters the meta-loss, one of `LOSS_TRANSFORMS`.
        jit_compile: compile the meta-step with XLA.
        """
        check_loss_transform(loss_transform)
        if not (hasattr(rule, "weights") and callable(getattr(rule, "apply", None))):
            raise UserError(
                f"meta.estimator {self.name!r} needs a rule written on explicit weights "
                f"(`weights` and `apply`, as rule.name 'mlp_rule'); {type(rule).__name__} is not"
            )
        self.unroll_length = _check_positive_int("unroll_length", unroll_length)
        self.num_pairs = _check_positive_int("num_pairs", num_pairs)
        self.sigma = _check_positive_number("sigma", sigma)
        if clip_grad_norm is not None:
            numeric = isinstance(clip_grad_norm, numbers.Real) and not isinstance(
                clip_grad_norm, bool
            )
            if not numeric or not 0 <= clip_grad_norm < math.inf:
                raise UserError(
                    f"meta.clip_grad_norm must be a non-negative number or None, "
                    f"got {clip_grad_norm!r}"
                )
        self.family = family
        self.rule = rule
        self.meta_optimizer = meta_optimizer
        self.clip_grad_norm = clip_grad_norm
        self.loss_transform = loss_transform

        weights = list(rule.weights)
        index = {w.ref(): i for i, w in enumerate(weights)}
        targets = list(meta_optimizer.targets)
        if len(targets) != len(weights) or any(t.ref() not in index for t in targets):
            raise UserError(
                "meta_optimizer must update exactly the rule's weights (rule.trainable_variables)"
            )
        # MetaOptimizer pairs grads with its targets in order (rule.trainable_variables).
        self._order = [index[t.ref()] for t in targets]
        self._shapes = [w.shape for w in weights]
        self._sizes = [int(w.shape.num_elements()) for w in weights]
        self.num_weights = sum(self._sizes)
        self.dtype = weights[0].dtype

        # The unperturbed truncation and the update, both exactly truncated BPTT's.
        self._bptt = TruncatedBPTT(
            family,
            rule,
            meta_optimizer,
            self.unroll_length,
            clip_grad_norm=clip_grad_norm,
            loss_transform=loss_transform,
        )
        self.trace_count = 0
        self.meta_step = tf.function(self._meta_step, jit_compile=bool(jit_compile))
        # The estimate alone, compiled (the particles' vectorized unroll needs a graph); for
        # tests and diagnostics: it applies nothing.
        self.meta_gradient = tf.function(self._meta_gradient)

    # -- pieces --------------------------------------------------------------------------------

    def noise(self, batch_seed, step0):
        """The perturbations eps of the truncation starting at `step0`, shape [num_pairs, D]."""
        seed = seeding.fold_in(seeding.fold_in(batch_seed, NOISE_INDEX), step0)
        shape = [self.num_pairs, self.num_weights]
        return self.sigma * tf.random.stateless_normal(shape, seed, dtype=self.dtype)

    def _flat_weights(self):
        return tf.concat([tf.reshape(w, [-1]) for w in self.rule.weights], axis=0)

    def _unflatten(self, flat):
        parts = tf.split(flat, self._sizes)
        return [tf.reshape(p, s) for p, s in zip(parts, self._shapes)]

    def truncation_loss(self, weights_flat, params, rule_state, task, batch_seed, step0):
        """TruncatedBPTT's (meta_loss, params, rule_state) of one truncation for the rule with
        the flattened weights `weights_flat`."""
        rule = PerturbedRule(self.rule, self._unflatten(weights_flat))
        unroll = TruncatedBPTT(
            self.family,
            rule,
            self.meta_optimizer,
            self.unroll_length,
            loss_transform=self.loss_transform,
        )
        return unroll.unroll(params, rule_state, task, batch_seed, step0)

    def _estimate(self, directions, losses):
        """sum_i x_i (L+_i - L-_i) / (2 P sigma^2) as one gradient per meta-optimizer target."""
        plus, minus = losses[: self.num_pairs], losses[self.num_pairs :]
        diff = tf.cast(plus - minus, self.dtype)
        scale = 1.0 / (2.0 * self.num_pairs * self.sigma**2)
        flat = scale * tf.linalg.matvec(directions, diff, transpose_a=True)
        grads = self._unflatten(flat)
        return [grads[i] for i in self._order]

    # -- the estimator interface of the training loop ------------------------------------------

    def advance(self, carry, task, batch_seed, step0):
        """One meta-update on the truncation starting at step `step0`: (new carry, metrics)."""
        return self.meta_step(carry, task, batch_seed, step0)

    def _meta_step(self, carry, task, batch_seed, step0):
        """One compiled meta-update. Non-finite meta-losses or gradients are skipped."""
        self.trace_count += 1  # Python side effect: runs once per trace, not per call.
        meta_loss, grads, carry = self._meta_gradient(carry, task, batch_seed, step0)
        return carry, self._bptt.apply_meta_gradient(meta_loss, grads)

    def _meta_gradient(self, carry, task, batch_seed, step0):
        """(meta_loss, grads in meta-optimizer target order, new carry), in a graph."""
        raise NotImplementedError


class AntitheticES(_EvolutionStrategy):
    """Truncated antithetic ES: every particle starts from the unperturbed trajectory.

    Estimates the gradient of the Gaussian-smoothed meta-loss of one truncation, E L(phi + eps),
    with L the truncation's meta-loss from the carried params and rule state (held constant,
    as in truncated BPTT). The carry is (params, rule_state) of the unperturbed trajectory,
    which advances by running phi itself; its meta-loss is the reported `meta_loss`.

    Cost per meta-step: (2 num_pairs + 1) * unroll_length optimizee steps, with no backward
    pass. Like truncated BPTT it is biased towards short horizons (the dependence of the
    truncation's start on phi is dropped); its variance grows with D / num_pairs but not with
    the episode's length.
    """

    name = "es"

    def start(self, params, rule_state):
        """The carry at the start of an episode from theta_0 and the rule's initial state."""
        return params, rule_state

    def _meta_gradient(self, carry, task, batch_seed, step0):
        params, rule_state = carry
        eps = self.noise(batch_seed, step0)
        theta = self._flat_weights()

        def particle(delta):
            loss, _, _ = self.truncation_loss(
                theta + delta, params, rule_state, task, batch_seed, step0
            )
            return loss

        losses = tf.vectorized_map(particle, tf.concat([eps, -eps], axis=0))
        grads = self._estimate(eps, losses)
        meta_loss, params, rule_state = self._bptt.unroll(
            params, rule_state, task, batch_seed, step0
        )
        return meta_loss, grads, (params, rule_state)


class PES(_EvolutionStrategy):
    """Persistent evolution strategies: particles keep their own trajectories over an episode.

    Each of the 2 num_pairs particles continues from its own params and rule state with
    phi + eps_j and accumulates its perturbations xi_j += eps_j (an antithetic pair shares xi
    with opposite signs). Summed over the truncations of an episode, the estimates are an
    unbiased estimate of the gradient of the Gaussian-smoothed full-episode meta-loss: the
    dependence across truncations that truncated BPTT and truncated ES drop is kept. The carry
    is (params, rule_state, xi) with a leading particle axis [2 num_pairs] on every tensor of
    params and rule_state and xi of shape [num_pairs, D]; `start` resets it. The reported
    `meta_loss` is the mean of the particles' truncation meta-losses.

    Cost per meta-step: 2 num_pairs * unroll_length optimizee steps, with no backward pass.
    The price of unbiasedness is variance: xi grows like sqrt(truncations so far) * sigma, so
    the estimate gets noisier late in long episodes.
    """

    name = "pes"

    def start(self, params, rule_state):
        """Every particle at theta_0 and the rule's initial state, with xi = 0."""
        def tile(x):
            return tf.repeat(tf.expand_dims(x, 0), 2 * self.num_pairs, axis=0)

        xi = tf.zeros([self.num_pairs, self.num_weights], self.dtype)
        return (
            [tile(p) for p in params],
            tf.nest.map_structure(tile, rule_state),
            xi,
        )

    def _meta_gradient(self, carry, task, batch_seed, step0):
        params, rule_state, xi = carry
        eps = self.noise(batch_seed, step0)
        theta = self._flat_weights()

        def particle(inputs):
            delta, p, s = inputs
            return self.truncation_loss(theta + delta, p, s, task, batch_seed, step0)

        losses, params, rule_state = tf.vectorized_map(
            particle, (tf.concat([eps, -eps], axis=0), params, rule_state)
        )
        xi = xi + eps
        grads = self._estimate(xi, losses)
        return tf.reduce_mean(losses), grads, (list(params), rule_state, xi)
