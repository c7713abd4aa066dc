"""Evaluating meta-gradient RL: the meta-learned eta against a grid of fixed (gamma, lambda).

`evaluate(config, ...)` is what `evaluate.py` does for MGRL configs: it trains, from scratch and
for several seeds, the agent with meta-learned eta and the agent with each fixed (gamma, lambda)
of a grid, all for the same number of environment steps, and reports the return per environment
step as curves, a table and plots.
"""

import math
import time
from pathlib import Path

import numpy as np

from l2l_tf import io as l2l_io
from l2l_tf.errors import UserError
from l2l_tf.experiments.mgrl.training import build_learner, final_return, run_curve
from l2l_tf.experiments.mgrl.validation import validate

META_LEARNED = "meta-learned"


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
    validate(config)
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
        results["training_eta"] = _training_eta(Path(workdir), log)
    paths = write_results(results, output_dir)
    log(format_table(results))
    log(f"wrote {', '.join(str(p) for p in paths.values())}")
    return results


def _nan_low(v):
    return -math.inf if v is None or not math.isfinite(v) else v


def _training_eta(workdir: Path, log) -> dict:
    path = workdir / "metrics.jsonl"
    records = l2l_io.read_jsonl(path, log) if path.is_file() else []
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
    from l2l_tf.reporting import rl_figures  # matplotlib only when plots are made
    from l2l_tf.reporting.common import write_tables

    paths = write_tables(output_dir, results, curves_csv(results), format_table(results))
    paths["returns"] = Path(output_dir) / "returns.png"
    paths["eta"] = Path(output_dir) / "eta.png"
    rl_figures.plot_returns(results, paths["returns"])
    rl_figures.plot_eta(results, paths["eta"])
    return paths
