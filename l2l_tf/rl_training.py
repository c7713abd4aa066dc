"""Training and evaluation of meta-gradient RL runs (configs with `meta.learner = "mgrl"`).

`train(config, workdir)` runs one MGRL agent (`l2l_tf/meta/mgrl.py`) and is what
`train_optimizer.py` does for such configs; `evaluate(config, ...)` is what `evaluate.py` does:
it trains, from scratch and for several seeds, the agent with meta-learned eta and the agent with
each fixed (gamma, lambda) of a grid, all for the same number of environment steps, and reports
the return per environment step as curves, a table and plots. The work directory layout, locking,
resume and atomic writes are the meta-training loop's (`l2l_tf/training.py`).
"""

import math
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from l2l_tf import config as config_lib
from l2l_tf import io as l2l_io
from l2l_tf.errors import UserError, check_decay
from l2l_tf.meta.mgrl import ETA_NAMES, MetaGradientRL, check_meta_objective
from l2l_tf.optimizers import BASELINES, UPDATE_RULES, make_rule
from l2l_tf.rl import make_env
from l2l_tf.rl.a2c import ActorCritic, check_embedding_input
from l2l_tf.training import WorkdirLock, _StopRequest, prepare_workdir, resume

META_LEARNED = "meta-learned"


def _probability(config, dotted, closed_top=False):
    value = config_lib._get(config, dotted)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not (0 < value < 1 or (closed_top and value == 1)):
        interval = "(0, 1]" if closed_top else "(0, 1)"
        raise UserError(f"{dotted} must be a number in {interval}, got {value!r}")
    return value


def _rule_name(config, dotted):
    name = config_lib._get(config, dotted)
    if name not in UPDATE_RULES or UPDATE_RULES[name].learned:
        raise UserError(f"{dotted} must be one of {list(BASELINES)}, got {name!r}")


def validate_config(config) -> None:
    """Checks the fields of an MGRL config (the environment checks its own when built).

    Raises:
      UserError: naming the first invalid field.
    """
    if not isinstance(config.get("seed"), int) or isinstance(config.get("seed"), bool):
        raise UserError(f"seed must be an integer, got {config.get('seed')!r}")
    for section in ("env", "agent", "meta", "train", "eval"):
        if section not in config:
            raise UserError(f"config has no section {section!r}")
    config_lib._positive_int(config, "env.num_envs")
    config_lib._positive_int(config, "agent.rollout_length")
    _rule_name(config, "agent.optimizer")
    config_lib._positive(config, "agent.learning_rate")
    for field in ("value_coef", "entropy_coef", "clip_grad_norm"):
        config_lib._positive(config, f"agent.{field}", allow_zero=True)
    learn = tuple(config_lib._get(config, "meta.learn"))
    unknown = [n for n in learn if n not in ETA_NAMES]
    if unknown or len(set(learn)) != len(learn):
        raise UserError(f"meta.learn must be a subset of {list(ETA_NAMES)}, got {learn!r}")
    check_embedding_input(config_lib.added_field(config, "agent.embedding_input"))
    _probability(config, "meta.init_gamma")
    _probability(config, "meta.init_lambda")
    _probability(config, "meta.reference_gamma")
    _probability(config, "meta.reference_lambda", closed_top=True)
    _rule_name(config, "meta.optimizer")
    config_lib._positive(config, "meta.learning_rate")
    config_lib._positive(config, "meta.clip_grad_norm", allow_zero=True)
    check_meta_objective(
        config.meta.get("objective", "policy_gradient"),
        config_lib.added_field(config, "meta.advantage_normalization"),
        config_lib.added_field(config, "meta.condition_on"),
    )
    if config.meta.optimizer == "adam":
        for field in ("meta.beta1", "meta.beta2"):
            check_decay(field, config_lib.added_field(config, field))
    decay = config_lib._positive(config, "meta.trace_decay", allow_zero=True)
    if decay >= 1:
        raise UserError(f"meta.trace_decay must be in [0, 1), got {decay!r}")
    for field in ("num_meta_iterations", "log_every", "checkpoint_every", "keep_checkpoints"):
        config_lib._positive_int(config, f"train.{field}")
    config_lib._positive_int(config, "eval.num_seeds")
    config_lib._positive_int(config, "eval.num_meta_iterations")
    config_lib._positive_int(config, "eval.log_every")
    config_lib._positive(config, "eval.final_fraction")
    if not isinstance(config.eval.get("fixed_grid", True), bool):
        raise UserError(f"eval.fixed_grid must be True or False, got {config.eval.fixed_grid!r}")
    if config.eval.final_fraction > 1:
        raise UserError(f"eval.final_fraction must be in (0, 1], got {config.eval.final_fraction}")
    for field in ("gammas", "lambdas"):
        values = tuple(config_lib._get(config, f"eval.{field}"))
        if not values or any(
            isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 1 for v in values
        ):
            raise UserError(f"eval.{field} must be a non-empty tuple of numbers in (0, 1]")
    if 1.0 in tuple(config.eval.gammas):
        raise UserError("eval.gammas: gamma must be below 1 (its logit is infinite)")


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
        objective=config.meta.get("objective", "policy_gradient"),
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

    Logs (console, TensorBoard `train/`, `metrics.jsonl`) every `train.log_every` iterations:
    environment steps, the mean return of the episodes completed in the interval, gamma, lambda
    and the losses.

    Returns:
      A summary: iterations, environment steps, final gamma and lambda, wall time, and
      `interrupted` (the signal's name) and `exit_status` (128 + its number) if a signal
      stopped the run.
    """
    validate_config(config)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    with WorkdirLock(workdir):
        prepare_workdir(config, workdir, overwrite)
        learner = build_learner(config)
        with _StopRequest() as stop:
            return _train_loop(config, workdir, learner, stop, log)


def _train_loop(config, workdir, learner, stop, log):
    train_cfg = config.train
    total = train_cfg.num_meta_iterations
    steps_per_iteration = config.env.num_envs * config.agent.rollout_length
    ckpt = tf.train.Checkpoint(learner=learner)
    manager, _ = resume(ckpt, learner.iteration, workdir, train_cfg.keep_checkpoints, log)
    writer = tf.summary.create_file_writer(str(workdir / "train"))
    i = int(learner.iteration.numpy())
    log(
        f"MGRL on {config.env.name}: {total} iterations of {steps_per_iteration} environment "
        f"steps, learning {list(learner.learn) or 'nothing (fixed eta)'} in {workdir}"
    )
    start_time, window = time.time(), _Window()
    while i < total and stop.signal is None:
        m = learner.step()
        i += 1
        window.add(m)
        _check_finite(m, i)
        if i % train_cfg.log_every == 0 or i == total:
            elapsed = time.time() - window.start
            record = {
                "iteration": i,
                "env_steps": (i + 1) * steps_per_iteration,  # tau_0 included
                "mean_return": window.mean_return(),
                "episodes": int(window.episodes),
                "gamma": float(m["gamma"]),
                "lambda": float(m["lambda"]),
                "loss": float(m["loss"]),
                "entropy": float(m["entropy"]),
                "meta_objective": float(m["meta_objective"]),
                "meta_grad_norm": float(m["meta_grad_norm"]),
                "meta_skipped": window.skipped,
                "iterations_per_s": train_cfg.log_every / elapsed if elapsed > 0 else math.nan,
                "wall_s": time.time() - start_time,
            }
            with writer.as_default(step=record["env_steps"]):
                for key in ("mean_return", "gamma", "lambda", "loss", "meta_objective"):
                    if math.isfinite(record[key]):
                        tf.summary.scalar(key, record[key])
            l2l_io.append_jsonl(workdir / "metrics.jsonl", record)
            log(
                f"iter {i}/{total}  env steps {record['env_steps']}  return "
                f"{record['mean_return']:.1f} ({record['episodes']} episodes)  gamma "
                f"{record['gamma']:.4f}  lambda {record['lambda']:.4f}  "
                f"{record['iterations_per_s']:.1f} it/s"
            )
            window = _Window()
        if i % train_cfg.checkpoint_every == 0 or i == total:
            manager.save(checkpoint_number=i)
    writer.flush()
    eta = learner.eta().numpy()
    summary = {
        "iterations": i,
        "env_steps": (i + 1) * steps_per_iteration,
        "gamma": float(eta[0]),
        "lambda": float(eta[1]),
        "wall_s": time.time() - start_time,
    }
    return stop.finish(summary, lambda n: manager.save(checkpoint_number=n), i, log, "iteration")


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


def _setting_name(gamma, lambda_):
    return f"gamma={gamma:g} lambda={lambda_:g}"


def _summary(values):
    values = np.asarray(values, float)
    n = len(values)
    return {
        "per_seed": [float(v) for v in values],
        "mean": float(np.mean(values)),
        "sem": float(np.std(values, ddof=1) / math.sqrt(n)) if n > 1 else math.nan,
    }


def evaluate(config, *, workdir=None, output_dir=None, seed=None, log=print) -> dict:
    """Meta-learned eta versus a grid of fixed (gamma, lambda), each over `eval.num_seeds` seeds.

    Every run starts from scratch and lasts `eval.num_meta_iterations` iterations (the same
    environment steps for all). Run s of every setting uses seed `seed + s` (default
    `config.seed + 1000`, disjoint from the training run's seed), so the agent initializations
    and environment randomness are paired across settings.

    Args:
      config: an MGRL config (from WORKDIR/config.json or a config file).
      workdir: a training run; its eta trajectory (metrics.jsonl) is added to the plots.
      output_dir: where results go (default WORKDIR/eval; required without `workdir`).
      seed: the first evaluation seed.

    Returns:
      The results dictionary written to results.json.
    """
    validate_config(config)
    if output_dir is None:
        if workdir is None:
            raise UserError("--output_dir is required when no --workdir is given")
        output_dir = Path(workdir) / "eval"
    eval_cfg = config.eval
    first_seed = config.seed + 1000 if seed is None else seed
    seeds = [first_seed + s for s in range(eval_cfg.num_seeds)]
    iterations, log_every = eval_cfg.num_meta_iterations, eval_cfg.log_every
    steps_per_iteration = config.env.num_envs * config.agent.rollout_length
    log(
        f"evaluating on {config.env.name}: {len(seeds)} seeds x {iterations} iterations "
        f"({(iterations + 1) * steps_per_iteration} environment steps per run)"
    )
    settings = {META_LEARNED: None}
    # fixed_grid=False runs the meta-learned agent alone: what tuning its fields on seeds other
    # than the evaluation seeds needs.
    for g in eval_cfg.gammas if eval_cfg.get("fixed_grid", True) else ():
        for lam in eval_cfg.lambdas:
            settings[_setting_name(g, lam)] = (g, lam)
    runs, learners = {}, {}
    for name, eta in settings.items():
        start = time.time()
        learn = tuple(config.meta.learn) if eta is None else ()
        if learn not in learners:  # one compiled learner per mode, reset for every run
            learners[learn] = build_learner(config, learn=learn, seed=seeds[0])
        learner = learners[learn]
        curves = []
        for s in seeds:
            learner.reset(s, eta or (config.meta.init_gamma, config.meta.init_lambda))
            curves.append(run_curve(learner, iterations, log_every))
        finals = [final_return(c, eval_cfg.final_fraction) for c in curves]
        overall = [final_return(c, 1.0) for c in curves]
        runs[name] = {
            "gamma": None if eta is None else eta[0],
            "lambda": None if eta is None else eta[1],
            "final_return": _summary(finals),
            "mean_return": _summary(overall),
            "curves": curves,
        }
        log(
            f"  {name:26s} final return {runs[name]['final_return']['mean']:7.1f} ± "
            f"{runs[name]['final_return']['sem']:.1f}  ({time.time() - start:.0f}s)"
        )
    fixed = [n for n in runs if n != META_LEARNED]
    best_fixed = (
        max(fixed, key=lambda n: _nan_low(runs[n]["final_return"]["mean"])) if fixed else None
    )
    results = {
        "env": config.env.name,
        "seeds": seeds,
        "num_meta_iterations": iterations,
        "env_steps_per_run": (iterations + 1) * steps_per_iteration,
        "final_fraction": eval_cfg.final_fraction,
        "reference_eta": [config.meta.reference_gamma, config.meta.reference_lambda],
        "init_eta": [config.meta.init_gamma, config.meta.init_lambda],
        "learned": list(config.meta.learn),
        "best_fixed": best_fixed,
        "runs": runs,
        "config": config.to_dict(),
    }
    if workdir is not None:
        results["workdir"] = str(workdir)
        results["training_eta"] = _training_eta(Path(workdir))
    paths = write_results(results, output_dir)
    log(format_table(results))
    log(f"wrote {', '.join(str(p) for p in paths.values())}")
    return results


def _nan_low(v):
    return -math.inf if v is None or not math.isfinite(v) else v


def _training_eta(workdir: Path) -> dict:
    import json

    path = workdir / "metrics.jsonl"
    records = []
    if path.is_file():
        records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    records = [r for r in records if "gamma" in r]
    return {k: [r[k] for r in records] for k in ("env_steps", "gamma", "lambda", "mean_return")}


def format_table(results: dict) -> str:
    """A markdown table of final and whole-run mean returns, best first."""
    rows = sorted(results["runs"].items(), key=lambda kv: -_nan_low(kv[1]["final_return"]["mean"]))
    pct = round(100 * results["final_fraction"])
    lines = [
        f"| setting | final return (last {pct}% of steps, mean ± sem) | return over the whole "
        "run | final gamma | final lambda |",
        "|---|---|---|---|---|",
    ]
    for name, r in rows:
        gammas = [c["gamma"][-1] for c in r["curves"]]
        lambdas = [c["lambda"][-1] for c in r["curves"]]
        f, a = r["final_return"], r["mean_return"]
        lines.append(
            f"| {name} | {f['mean']:.1f} ± {f['sem']:.1f} | {a['mean']:.1f} ± {a['sem']:.1f} "
            f"| {np.mean(gammas):.4f} | {np.mean(lambdas):.4f} |"
        )
    return "\n".join(lines)


def curves_csv(results: dict) -> str:
    """env_steps, then the mean return over seeds of every setting, one row per interval."""
    names = list(results["runs"])
    first = results["runs"][names[0]]["curves"][0]["env_steps"]
    rows = ["env_steps," + ",".join(f'"{n}"' for n in names)]
    for t, steps in enumerate(first):
        values = [
            np.nanmean([c["returns"][t] for c in results["runs"][n]["curves"]]) for n in names
        ]
        rows.append(f"{steps}," + ",".join(f"{v:.6g}" for v in values))
    return "\n".join(rows) + "\n"


def write_results(results: dict, output_dir) -> dict:
    """Writes results.json, curves.csv, summary.md, returns.png and eta.png into `output_dir`."""
    from l2l_tf.rl import plotting

    output_dir = Path(output_dir)
    paths = {
        "json": output_dir / "results.json",
        "csv": output_dir / "curves.csv",
        "table": output_dir / "summary.md",
        "returns": output_dir / "returns.png",
        "eta": output_dir / "eta.png",
    }
    l2l_io.write_json(paths["json"], results)
    l2l_io.write_text(paths["csv"], curves_csv(results))
    l2l_io.write_text(paths["table"], format_table(results) + "\n")
    plotting.plot_returns(results, paths["returns"])
    plotting.plot_eta(results, paths["eta"])
    return paths
