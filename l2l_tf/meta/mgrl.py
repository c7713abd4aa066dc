"""Meta-gradient reinforcement learning (Xu, van Hasselt and Silver, 2018): learning eta online.

The agent's parameters theta are updated on a rollout tau with the A2C loss of `rl/a2c.py`
under the meta-parameters eta = (gamma, lambda) of its lambda-return:

    theta' = theta + f(tau, theta, eta),   f = rule(grad_theta J(tau, theta, eta)).

Online cross-validation: the next rollout tau' (collected by theta') scores theta' with a
meta-objective that uses a fixed reference eta' = (gamma', lambda'),

    J'(tau', theta', eta') = -mean[ A'(eta') log pi(a'|s', eta'; theta') ],

and eta is moved along the meta-gradient

    dJ'/d eta = dJ'/d theta' * d theta'/d eta,
    d theta'/d eta ~= z',   z' = mu z + d f(tau, theta, eta)/d eta,

where z is the accumulated trace of d theta / d eta (the paper drops the (I + df/dtheta) factor
of the exact recursion; mu = `trace_decay`; mu = 0 keeps only the direct effect of this update,
the paper's default). eta is parameterized as sigmoid(logits) so it stays in (0, 1), and the
meta-optimizer (an `UpdateRule`, Adam by default) updates the logits. Each rollout is used twice,
first as tau' to validate the previous update and then as tau for the next one, so learning eta
costs no extra environment steps.

With mu = 0 the meta-gradient is exact reverse-mode differentiation through one agent update,
Hessian-vector products included. With mu > 0 the trace's two columns (one per component of
eta) are forward-mode derivatives of the update, accumulated in variables between iterations.

`MetaGradientRL` owns all of its state in `tf.Variable`s (agent parameters and optimizer state,
eta, the meta-optimizer, the environments, the pending rollout and the trace), so one
`tf.train.Checkpoint(learner=...)` resumes a run exactly. `step` is one compiled iteration.
"""

import numpy as np
import tensorflow as tf

from l2l_tf import seeding
from l2l_tf.errors import UserError
from l2l_tf.meta.optimizer import MetaOptimizer
from l2l_tf.optimizers.base import UpdateRule, apply_updates
from l2l_tf.rl.a2c import (
    ActorCritic,
    RolloutState,
    Trajectory,
    a2c_loss,
    policy_gradient_objective,
    returns_and_advantages,
    rollout,
)
from l2l_tf.rl.envs import Environment

ETA_NAMES = ("gamma", "lambda")
META_OBJECTIVES = ("policy_gradient", "a2c")
#: How A' of the policy-gradient J' is normalised over the validation batch (see `__init__`).
ADVANTAGE_NORMALIZATIONS = ("none", "center", "standardize")
#: The eta the networks see in the policy-gradient J': the reference eta' (the paper's) or the
#: agent's own current eta (held constant: the meta-gradient still flows only through theta').
CONDITION_ON = ("reference", "agent")


def check_meta_objective(
    objective: str, advantage_normalization: str = "none", condition_on: str = "reference"
) -> None:
    """Raises UserError unless meta.objective and the options of its J' are valid together.

    The one check of these fields, called by config validation and by `MetaGradientRL`.
    """
    if objective not in META_OBJECTIVES:
        raise UserError(f"meta.objective must be one of {list(META_OBJECTIVES)}, got {objective!r}")
    for field, value, choices in (
        ("advantage_normalization", advantage_normalization, ADVANTAGE_NORMALIZATIONS),
        ("condition_on", condition_on, CONDITION_ON),
    ):
        if value not in choices:
            raise UserError(f"meta.{field} must be one of {list(choices)}, got {value!r}")
        if value != choices[0] and objective != "policy_gradient":  # choices[0]: the paper's
            raise UserError(
                f"meta.{field} applies to the policy_gradient objective only, "
                f"got objective {objective!r}"
            )


def logit(p: float) -> float:
    """Inverse of the sigmoid."""
    return float(np.log(p) - np.log1p(-p))


@tf.custom_gradient
def _finite_cotangent(g):
    """Identity whose backward pass replaces non-finite cotangents by 0.

    Why: a coordinate whose gradient is exactly 0 (say, a weight from a one-hot input that no
    state of the rollout activates) has Adam/RMSprop second moment v = 0, and the derivative of
    sqrt(v) there is infinite, so backpropagating through the update gives 0 * inf = NaN. Such a
    gradient is 0 for every eta, so its true contribution to the meta-gradient is 0.
    """

    def grad(dy):
        return tf.where(tf.math.is_finite(dy), dy, tf.zeros_like(dy))

    return tf.identity(g), grad


def _finite(t):
    return tf.where(tf.math.is_finite(t), t, tf.zeros_like(t))


def _variables(structure, name):
    return [
        tf.Variable(t, trainable=False, name=f"{name}_{i}")
        for i, t in enumerate(tf.nest.flatten(structure))
    ]


def _read(variables, structure):
    return tf.nest.pack_sequence_as(structure, [v.read_value() for v in variables])


def _assign(variables, values) -> None:
    for v, t in zip(variables, tf.nest.flatten(values)):
        v.assign(t)


class MetaGradientRL(tf.Module):
    """An A2C agent whose (gamma, lambda) are meta-learned online (see the module docstring)."""

    def __init__(
        self,
        env: Environment,
        agent: ActorCritic,
        rule: UpdateRule,
        meta_rule: UpdateRule | None,
        *,
        num_envs: int,
        rollout_length: int,
        seed: int,
        init_eta=(0.99, 1.0),
        reference_eta=(0.99, 1.0),
        learn=("gamma", "lambda"),
        value_coef: float = 0.5,
        entropy_coef: float = 0.01,
        clip_grad_norm: float | None = None,
        meta_clip_grad_norm: float | None = None,
        trace_decay: float = 0.0,
        objective: str = "policy_gradient",
        advantage_normalization: str = "none",
        condition_on: str = "reference",
        jit_compile: bool = False,
        name: str = "mgrl",
    ):
        """Builds the learner and collects its first rollout.

        Args:
          env, agent: the environments and the eta-conditioned actor-critic.
          rule: the agent's update rule (its state is differentiated through).
          meta_rule: the update rule of eta's logits; None with `learn=()` (fixed eta).
          num_envs, rollout_length: B environments, T steps per rollout.
          seed: the run's seed (agent initialization, environment resets, actions).
          init_eta: (gamma, lambda) at the start, each in (0, 1).
          reference_eta: (gamma', lambda') of the meta-objective.
          learn: which components of eta are meta-learned; () trains a plain A2C agent.
          value_coef, entropy_coef: c_v and c_e of the A2C loss.
          clip_grad_norm: clip the agent's gradient by global norm (None: no clipping).
          meta_clip_grad_norm: likewise for the meta-gradient.
          trace_decay: mu of the trace z of d theta / d eta (0: no trace).
          objective: the meta-objective J': "policy_gradient" (the paper's, A' log pi only) or
            "a2c" (the whole A2C loss under eta': policy gradient, value loss and entropy,
            with the agent's value_coef and entropy_coef).
          advantage_normalization: A' of the policy-gradient J' as it is ("none", the paper's),
            minus its mean over the validation batch ("center": a baseline, since the critic
            is trained only at the agent's own eta, v(s, eta') is biased and A' has a large
            common part that only raises the log-probability of every taken action), or
            centered and divided by its standard deviation ("standardize": also gives every
            iteration's meta-gradient the same scale as the returns grow). Only with
            objective "policy_gradient".
          jit_compile: compile `step` with XLA (not with a trace: see below).
        """
        super().__init__(name=name)
        self.env, self.agent, self.rule = env, agent, rule
        self.num_envs, self.rollout_length = int(num_envs), int(rollout_length)
        self.value_coef, self.entropy_coef = float(value_coef), float(entropy_coef)
        self.clip_grad_norm = clip_grad_norm or None
        self.meta_clip_grad_norm = meta_clip_grad_norm or None
        self.trace_decay = float(trace_decay)
        check_meta_objective(objective, advantage_normalization, condition_on)
        self.objective = objective
        self.advantage_normalization = advantage_normalization
        self.condition_on = condition_on
        self.learn = tuple(learn)
        self.mask = tf.constant([float(n in self.learn) for n in ETA_NAMES], agent.dtype)
        self.reference_eta = tf.constant(reference_eta, agent.dtype)
        self.eta_logits = tf.Variable(
            [logit(e) for e in init_eta], dtype=agent.dtype, name="eta_logits"
        )
        self.meta_optimizer = MetaOptimizer(meta_rule, [self.eta_logits]) if self.learn else None
        # The origin of an "eta_change" embedding: the run's initial eta (tracked here so that a
        # checkpoint restores it).
        self.eta_start = agent.eta_start
        self.eta_start.assign(self.eta())
        # The run's root seed is a variable, so `reset` can start another run without retracing.
        self.seed = tf.Variable(
            seeding.root_seed(seed, seeding.TRAIN), trainable=False, name="seed"
        )
        self._collect = tf.function(self._collect_fn)
        params, traj, start = self._first_rollout(seed)
        self.params = [tf.Variable(p, trainable=False, name="theta") for p in params]
        # The agent's optimizer state lives in a MetaOptimizer's slots (variables), but the
        # update is applied here, differentiably, rather than by MetaOptimizer.apply.
        self.agent_optimizer = MetaOptimizer(rule, self.params, name="agent_optimizer")
        self._traj_structure, self._rollout_structure = traj, start
        self.trajectory = _variables(traj, "trajectory")
        self.rollout_state = _variables(start, "rollout")
        if self.trace_decay > 0:
            self.trace = [
                tf.Variable(tf.zeros([*p.shape, len(ETA_NAMES)], p.dtype), trainable=False)
                for p in params
            ]
        self.iteration = tf.Variable(0, dtype=tf.int64, name="iteration")
        self.trace_count = 0
        # With a trace, XLA would fail: forward-mode differentiation of the update passes
        # through the gradient of a slice, which inside XLA is an XlaDynamicUpdateSlice, an op
        # with no registered gradient. So the trace runs compiled by tf.function alone.
        self.jit_compile = bool(jit_compile) and self.trace_decay == 0
        self.step = tf.function(self._step, jit_compile=self.jit_compile)

    def _first_rollout(self, seed: int):
        """Initial agent parameters, the first rollout tau_0 and the state after it."""
        init_seed, env_seed = seeding.split(seeding.root_seed(seed, seeding.INIT))
        params = self.agent.init_params(init_seed)
        start = RolloutState(
            self.env.reset(env_seed, self.num_envs), tf.zeros([self.num_envs], tf.float32)
        )
        train_seed = seeding.root_seed(seed, seeding.TRAIN)
        traj, start, _ = self._collect(params, start, seeding.fold_in(train_seed, 0))
        return params, traj, start

    def reset(self, seed: int, init_eta=None) -> None:
        """Starts a fresh run from `seed` (and `init_eta`) in the same variables.

        Everything a run owns is re-initialized: the agent, its optimizer state, eta and the
        meta-optimizer's state, the environments, the pending rollout and the trace. `step` is
        not retraced, which saves a compilation per run when many seeds are evaluated.
        """
        if init_eta is not None:
            self.eta_logits.assign([logit(e) for e in init_eta])
        self.eta_start.assign(self.eta())
        self.seed.assign(seeding.root_seed(seed, seeding.TRAIN))
        params, traj, start = self._first_rollout(seed)
        _assign(self.params, params)
        _assign(self.agent_optimizer.slots, self.rule.init(params))
        if self.meta_optimizer is not None:
            _assign(self.meta_optimizer.slots, self.meta_optimizer.rule.init([self.eta_logits]))
        _assign(self.trajectory, traj)
        _assign(self.rollout_state, start)
        for z in getattr(self, "trace", []):
            z.assign(tf.zeros_like(z))
        self.iteration.assign(0)

    # Pure functions of tensors (also used by the tests).

    def eta(self, logits=None) -> tf.Tensor:
        """(gamma, lambda) = sigmoid(logits)."""
        return tf.sigmoid(self.eta_logits if logits is None else logits)

    def inner_update(self, logits, params, rule_state, traj: Trajectory):
        """theta' = theta + rule(grad J(tau, theta, sigmoid(logits))), differentiable in logits.

        Returns:
          (theta', new rule state, loss, loss terms, gradient norm).
        """
        eta = tf.sigmoid(logits)
        with tf.GradientTape() as tape:
            tape.watch(params)
            loss, terms = a2c_loss(
                self.agent, params, traj, eta, self.value_coef, self.entropy_coef
            )
        grads = tape.gradient(loss, params)
        grad_norm = tf.linalg.global_norm(grads)
        if self.clip_grad_norm:
            grads, _ = tf.clip_by_global_norm(grads, self.clip_grad_norm, use_norm=grad_norm)
        grads = [_finite_cotangent(g) for g in grads]
        updates, rule_state = self.rule.step(grads, rule_state, params)
        return apply_updates(params, updates), rule_state, loss, terms, grad_norm

    def meta_objective(self, params, traj: Trajectory, targets=None) -> tf.Tensor:
        """J'(tau', theta', eta') with the reference eta' (G', A' held constant; see a2c.py).

        Args:
          params, traj: theta' and the validation rollout tau'.
          targets: (G', A') to hold instead of computing them from `params` (tests).
        """
        if self.objective == "a2c":
            loss, _ = a2c_loss(
                self.agent,
                params,
                traj,
                self.reference_eta,
                self.value_coef,
                self.entropy_coef,
                targets,
            )
            return loss
        input_eta = None
        if self.condition_on == "agent":
            input_eta = tf.stop_gradient(self.eta())
        if targets is None:
            _, advantages = returns_and_advantages(
                self.agent, params, traj, self.reference_eta, input_eta
            )
        else:
            advantages = targets[1]
        advantages = tf.stop_gradient(advantages)
        if self.advantage_normalization != "none":
            advantages = advantages - tf.reduce_mean(advantages)
        if self.advantage_normalization == "standardize":
            advantages = advantages / (tf.math.reduce_std(advantages) + 1e-8)
        return policy_gradient_objective(
            self.agent, params, traj, self.reference_eta, advantages, input_eta
        )

    def meta_gradient(self, logits, params, rule_state, traj, next_traj):
        """dJ'(next_traj, theta'(logits)) / d logits through one inner update (no trace).

        Returns:
          (meta-objective, gradient [2]).
        """
        with tf.GradientTape() as tape:
            tape.watch(logits)
            new_params, *_ = self.inner_update(logits, params, rule_state, traj)
            objective = self.meta_objective(new_params, next_traj)
        return objective, tape.gradient(objective, logits)

    def update_jacobian(self, logits, params, rule_state, traj):
        """d theta' / d logits by forward mode: a list of [*p.shape, 2] tensors."""
        columns = []
        for i in range(len(ETA_NAMES)):
            tangent = tf.one_hot(i, len(ETA_NAMES), dtype=logits.dtype)
            with tf.autodiff.ForwardAccumulator(logits, tangent) as acc:
                new_params, *_ = self.inner_update(logits, params, rule_state, traj)
            columns.append(acc.jvp(new_params, unconnected_gradients="zero"))
        # Forward mode meets the same 0/0 at sqrt(v = 0) as reverse mode (see
        # `_finite_cotangent`), with the same true value 0.
        return [_finite(tf.stack(c, axis=-1)) for c in zip(*columns)]

    # The compiled iteration.

    def _collect_fn(self, params, state, seed):
        return rollout(
            self.env,
            self.agent,
            params,
            tf.stop_gradient(self.eta()),
            state,
            seed,
            self.rollout_length,
        )

    def _step(self):
        """One iteration: update theta on the pending rollout, collect the next one with
        theta', then (if eta is learned) update eta by the meta-gradient on that rollout."""
        self.trace_count += 1  # Python side effect: once per trace
        params = [p.read_value() for p in self.params]
        rule_state = self.agent_optimizer.state()
        traj = _read(self.trajectory, self._traj_structure)
        state = _read(self.rollout_state, self._rollout_structure)
        logits = self.eta_logits.read_value()
        seed = seeding.fold_in(self.seed, self.iteration + 1)
        zero = tf.zeros([], self.agent.dtype)
        meta_grad = tf.zeros_like(logits)
        objective = zero

        if not self.learn:
            new_params, rule_state, loss, terms, grad_norm = self.inner_update(
                logits, params, rule_state, traj
            )
            next_traj, state, stats = rollout(
                self.env,
                self.agent,
                new_params,
                self.eta(logits),
                state,
                seed,
                self.rollout_length,
            )
        elif self.trace_decay == 0:
            with tf.GradientTape() as tape:
                tape.watch(logits)
                new_params, rule_state, loss, terms, grad_norm = self.inner_update(
                    logits, params, rule_state, traj
                )
                with tape.stop_recording():
                    next_traj, state, stats = rollout(
                        self.env,
                        self.agent,
                        new_params,
                        self.eta(logits),
                        state,
                        seed,
                        self.rollout_length,
                    )
                objective = self.meta_objective(new_params, next_traj)
            meta_grad = tape.gradient(objective, logits)
        else:
            jacobian = self.update_jacobian(logits, params, rule_state, traj)
            new_params, rule_state, loss, terms, grad_norm = self.inner_update(
                logits, params, rule_state, traj
            )
            trace = [self.trace_decay * z + j for z, j in zip(self.trace, jacobian)]
            next_traj, state, stats = rollout(
                self.env,
                self.agent,
                new_params,
                self.eta(logits),
                state,
                seed,
                self.rollout_length,
            )
            with tf.GradientTape() as tape:
                tape.watch(new_params)
                objective = self.meta_objective(new_params, next_traj)
            d_params = tape.gradient(objective, new_params, unconnected_gradients="zero")
            meta_grad = tf.add_n(
                [
                    tf.tensordot(tf.reshape(g, [-1]), tf.reshape(z, [-1, len(ETA_NAMES)]), 1)
                    for g, z in zip(d_params, trace)
                ]
            )
            for v, z in zip(self.trace, trace):
                v.assign(z)

        meta_grad = meta_grad * self.mask
        meta_grad_norm = tf.norm(meta_grad)
        finite = tf.math.is_finite(meta_grad_norm) & tf.math.is_finite(objective)
        if self.learn:
            self.meta_optimizer.apply_if_finite(
                objective, [meta_grad], self.meta_clip_grad_norm, meta_grad_norm
            )

        for v, p in zip(self.params, new_params):
            v.assign(p)
        _assign(self.agent_optimizer.slots, rule_state)
        _assign(self.trajectory, next_traj)
        _assign(self.rollout_state, state)
        self.iteration.assign_add(1)
        eta = self.eta()
        return {
            "loss": loss,
            **terms,
            "grad_norm": grad_norm,
            "meta_objective": objective,
            "meta_grad_norm": meta_grad_norm,
            "meta_skipped": tf.logical_not(finite) & tf.constant(bool(self.learn)),
            "gamma": eta[0],
            "lambda": eta[1],
            **stats,
        }
