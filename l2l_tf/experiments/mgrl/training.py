"""Training meta-gradient RL runs (configs with `meta.learner = "mgrl"`) through the one loop.

`train(config, workdir)` runs one MGRL agent (`l2l_tf/meta/mgrl.py`): one iteration is one
rollout, one agent update and one update of eta. `run_curve` runs a learner without a work
directory, for the evaluation's fresh runs.
"""

import math
import time
from pathlib import Path

from l2l_tf import config as config_lib
from l2l_tf.errors import UserError
from l2l_tf.experiments.mgrl.validation import validate
from l2l_tf.meta.mgrl import MetaGradientRL
from l2l_tf.optimizers import make_rule
from l2l_tf.rl import make_env
from l2l_tf.rl.a2c import ActorCritic
from l2l_tf.run import loop
from l2l_tf.run.workdir import WorkdirLock, prepare_workdir


def build_learner(config, *, learn=None, init_eta=None, seed=None) -> MetaGradientRL:
    """The learner of `config` (eta learned as in `meta.learn` unless `learn` is given)."""
    env = make_env(config.env)
    agent = ActorCritic(
        env.observation_size,
        env.num_actions,
        hidden_sizes=tuple(config.agent.hidden_sizes),
        embedding_size=config.agent.embedding_size,
        embedding_input=config_lib.added_field(config, "agent.embedding_input"),
    )
    learn = tuple(config.meta.learn) if learn is None else tuple(learn)
    rule = make_rule({"name": config.agent.optimizer, "learning_rate": config.agent.learning_rate})
    meta_rule_config = {"name": config.meta.optimizer, "learning_rate": config.meta.learning_rate}
    if config.meta.optimizer == "adam":
        meta_rule_config["beta1"] = config_lib.added_field(config, "meta.beta1")
        meta_rule_config["beta2"] = config_lib.added_field(config, "meta.beta2")
    meta_rule = make_rule(meta_rule_config)
    init_eta = (config.meta.init_gamma, config.meta.init_lambda) if init_eta is None else init_eta
    # lambda = 1 is a valid fixed value but its logit is infinite: nudge it inside (0, 1).
    init_eta = tuple(min(float(e), 1 - 1e-7) for e in init_eta)
    return MetaGradientRL(
        env,
        agent,
        rule,
        meta_rule if learn else None,
        num_envs=config.env.num_envs,
        rollout_length=config.agent.rollout_length,
        seed=config.seed if seed is None else seed,
        init_eta=init_eta,
        reference_eta=(config.meta.reference_gamma, config.meta.reference_lambda),
        learn=learn,
        value_coef=config.agent.value_coef,
        entropy_coef=config.agent.entropy_coef,
        clip_grad_norm=config.agent.clip_grad_norm or None,
        meta_clip_grad_norm=config.meta.clip_grad_norm or None,
        trace_decay=config.meta.trace_decay,
        objective=config_lib.added_field(config, "meta.objective"),
        advantage_normalization=config_lib.added_field(config, "meta.advantage_normalization"),
        condition_on=config_lib.added_field(config, "meta.condition_on"),
        jit_compile=config.meta.jit_compile,
    )


class _Window:
    """Completed-episode returns and the last metrics over a log interval."""

    def __init__(self):
        self.return_sum, self.episodes, self.skipped, self.start = 0.0, 0.0, 0, time.time()

    def add(self, m) -> None:
        self.return_sum += float(m["return_sum"])
        self.episodes += float(m["episodes"])
        self.skipped += int(bool(m["meta_skipped"]))

    def mean_return(self) -> float:
        return self.return_sum / self.episodes if self.episodes else math.nan


def _check_finite(m, i) -> None:
    if not math.isfinite(float(m["loss"])):
        raise UserError(
            f"the agent diverged: non-finite loss at iteration {i}; lower agent.learning_rate"
        )


def train(config, workdir, *, overwrite: bool = False, log=print) -> dict:
    """Trains one MGRL agent in `workdir`, resuming from its last checkpoint if there is one.

    Logs every `train.log_every` iterations: environment steps, the mean return of the episodes
    completed in the interval, gamma, lambda and the losses. There is no validation (and no
    best/): the agent's own training curve is the result, and `evaluate` compares fresh runs.

    Returns:
      The loop's summary (`l2l_tf.run.loop.train_loop`), with the environment steps and the
      final gamma and lambda.
    """
    validate(config)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    with WorkdirLock(workdir):
        prepare_workdir(config, workdir, overwrite)
        learner = build_learner(config)
        return loop.train_loop(_trainer(config, workdir, learner), workdir, config.train, log=log)


def _trainer(config, workdir, learner) -> loop.Trainer:
    steps_per_iteration = config.env.num_envs * config.agent.rollout_length

    def step(start, count, total):
        del count, total  # one agent update per call
        m = learner.step()
        _check_finite(m, start + 1)
        return {k: v.numpy() for k, v in m.items()} | {"skipped": 0}

    def log_fields(outputs):
        window = _Window()
        for m in outputs:
            window.add(m)
        m = outputs[-1]
        return {
            "env_steps": (int(learner.iteration.numpy()) + 1) * steps_per_iteration,  # tau_0
            "mean_return": window.mean_return(),
            "episodes": int(window.episodes),
            "gamma": float(m["gamma"]),
            "lambda": float(m["lambda"]),
            "loss": float(m["loss"]),
            "entropy": float(m["entropy"]),
            "meta_objective": float(m["meta_objective"]),
            "meta_grad_norm": float(m["meta_grad_norm"]),
            "meta_skipped": window.skipped,
        }

    def summary_fields():
        eta = learner.eta().numpy()
        i = int(learner.iteration.numpy())
        return {
            "env_steps": (i + 1) * steps_per_iteration,
            "gamma": float(eta[0]),
            "lambda": float(eta[1]),
        }

    return loop.Trainer(
        state={"learner": learner},
        iteration=learner.iteration,
        step=step,
        log_fields=log_fields,
        log_text=lambda r: (
            f"env steps {r['env_steps']}  return {r['mean_return']:.1f} ({r['episodes']} "
            f"episodes)  gamma {r['gamma']:.4f}  lambda {r['lambda']:.4f}"
        ),
        scalars=("mean_return", "gamma", "lambda", "loss", "meta_objective"),
        count_skips=False,
        tensorboard_step=lambda record: record["env_steps"],
        summary_fields=summary_fields,
        unit="iteration",
        describe=(
            f"MGRL on {config.env.name}: {config.train.num_meta_iterations} iterations of "
            f"{steps_per_iteration} environment steps, learning "
            f"{list(learner.learn) or 'nothing (fixed eta)'} in {workdir}"
        ),
    )


def run_curve(learner: MetaGradientRL, num_iterations: int, log_every: int) -> dict:
    """Runs `learner` from its current state; the return per environment step, and eta.

    Returns:
      {"env_steps", "returns" (mean return of the episodes completed in each interval),
       "episode_return_sum", "episodes" (per interval), "gamma", "lambda"} lists.
    """
    steps_per_iteration = learner.num_envs * learner.rollout_length
    out = {k: [] for k in ("env_steps", "returns", "return_sum", "episodes", "gamma", "lambda")}
    window = _Window()
    for i in range(1, num_iterations + 1):
        m = learner.step()
        window.add(m)
        _check_finite(m, i)
        if i % log_every == 0 or i == num_iterations:
            out["env_steps"].append((i + 1) * steps_per_iteration)
            out["returns"].append(window.mean_return())
            out["return_sum"].append(window.return_sum)
            out["episodes"].append(window.episodes)
            out["gamma"].append(float(m["gamma"]))
            out["lambda"].append(float(m["lambda"]))
            window = _Window()
    return out


def final_return(curve: dict, fraction: float) -> float:
    """Mean return of the episodes completed in the last `fraction` of a run's intervals."""
    n = max(1, int(round(len(curve["episodes"]) * fraction)))
    episodes = sum(curve["episodes"][-n:])
    return sum(curve["return_sum"][-n:]) / episodes if episodes else math.nan


