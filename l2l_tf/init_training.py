"""Meta-training of initialization-based meta-learners (MAML, FOMAML, Reptile, Meta-SGD, iMAML).

`train(config, workdir)` is what `train_optimizer.py` runs when `config.meta.learner` names one of
these learners (the learned-optimizer path, `meta.learner="l2l"`, stays in `training.py`). It
shares that module's work-directory handling (lock, config check, best/ and signals); what
differs is the compiled unit: `MetaTrainStep` runs a block of meta-iterations in one
`tf.function` call (a `tf.range` loop), each meta-iteration sampling a fresh meta-batch of tasks
from its stateless seed, taking the learner's outer gradient and applying the meta-optimizer. A
block ends at every log, validation and checkpoint boundary, so Python runs once per block, not
once per meta-iteration.
"""

import math
import time
from pathlib import Path

import tensorflow as tf

from l2l_tf import config as config_lib
from l2l_tf import evaluation, seeding
from l2l_tf import io as l2l_io
from l2l_tf.errors import UserError, lookup
from l2l_tf.meta import META_LEARNERS, MetaOptimizer
from l2l_tf.meta.base import MetaLearner, sample_episode
from l2l_tf.optimizers import BASELINES, make_rule
from l2l_tf.optimizers.per_parameter import PerParameterSGD
from l2l_tf.problems import make_task_family

#: The learners trained here (config.meta.learner); "l2l" is training.py's.
INIT_LEARNERS = ("maml", "fomaml", "metasgd", "reptile", "imaml")
LR_SCHEDULES = ("constant", "linear")
#: Tasks evaluated in one compiled call (validation and evaluation split larger sets).
MAX_TASKS_PER_CALL = 1000


def validate(config) -> None:
    """Checks the fields of an initialization-learner config.

    Raises:
      UserError: naming the first invalid field.
    """
    pos_int, pos = config_lib._positive_int, config_lib._positive
    if not isinstance(config.get("seed"), int) or isinstance(config.get("seed"), bool):
        raise UserError(f"seed must be an integer, got {config.get('seed')!r}")
    for section in ("problem", "meta", "train", "eval"):
        if section not in config:
            raise UserError(f"config has no section {section!r}")
    learner = config.meta.get("learner")
    if learner not in INIT_LEARNERS:
        raise UserError(f"meta.learner must be one of {['l2l', *INIT_LEARNERS]}, got {learner!r}")
    for field in ("meta_batch_size", "num_inner_steps", "iterations_per_call"):
        pos_int(config, f"meta.{field}")
    pos(config, "meta.learning_rate")
    pos(config, "meta.clip_grad_norm", allow_zero=True)
    for field in ("optimizer", "inner_optimizer"):
        if config_lib._get(config, f"meta.{field}") not in BASELINES:
            raise UserError(
                f"meta.{field} must be one of {list(BASELINES)}, got {config.meta[field]!r}"
            )
    pos(config, "meta.inner_learning_rate")
    if config_lib._get(config, "meta.lr_schedule") not in LR_SCHEDULES:
        raise UserError(
            f"meta.lr_schedule must be one of {list(LR_SCHEDULES)}, got {config.meta.lr_schedule!r}"
        )
    if learner == "imaml":
        pos(config, "meta.lam")
        pos_int(config, "meta.cg_steps")
        rate = config.meta.inner_learning_rate * config.meta.lam
        if config.meta.inner_optimizer == "sgd" and rate >= 2:
            # The proximal term alone has curvature lambda: SGD on it multiplies phi - theta by
            # (1 - lr * lambda) per step, which grows when lr * lambda > 2 (every evaluation
            # task diverged within 6 steps with lambda = 1000, lr = 0.01).
            raise UserError(
                f"meta.inner_learning_rate * meta.lam = {rate:g} must be below 2, or SGD on "
                "iMAML's proximal inner objective diverges (lr * lambda = 1 is the usual choice)"
            )
    if learner == "metasgd":
        rng = config_lib._get(config, "meta.rate_init_range")
        if len(rng) != 2 or not 0 < rng[0] <= rng[1]:
            raise UserError(f"meta.rate_init_range must be (low, high), 0 < low <= high: {rng}")
    config_lib.validate_train_section(config)
    for field in ("num_tasks", "num_steps", "num_tuning_tasks", "pretrain_iterations"):
        pos_int(config, f"eval.{field}")
    if "tasks_per_call" in config.eval:
        pos_int(config, "eval.tasks_per_call")
    config_lib.validate_lr_grid(config)

    unknown = [b for b in config.eval.baselines if b not in ("pretrained", "scratch")]
    if unknown:
        raise UserError(f"eval.baselines: unknown {unknown}; valid: ['pretrained', 'scratch']")


def build_family(config, batch_size: int, split: str = "train"):
    """The config's task family with `batch_size` tasks per sample (the meta-batch).

    `split` picks the classes of families that split a data set by class (few-shot
    classification): "train" for meta-training and the pretrained baseline, "val" for
    validation and learning-rate tuning, "test" for the final evaluation. Other families
    ignore it (their splits are the seed domains).
    """
    return make_task_family(config.problem, config.get("data"), split=split, batch_size=batch_size)


def tasks_per_call(config, num_tasks: int) -> int:
    """How many of `num_tasks` tasks one compiled validation or evaluation call runs.

    `eval.tasks_per_call` caps it where the config has it (a conv net's activations for many
    tasks at once are large), else `MAX_TASKS_PER_CALL`.
    """
    return min(num_tasks, config.eval.get("tasks_per_call", MAX_TASKS_PER_CALL))


def initial_meta_params(family, seed: int) -> list[tf.Tensor]:
    """theta_0: the family's own initialization of one member, from the INIT seed domain."""
    root = seeding.root_seed(seed, seeding.INIT)
    task_seed, init_seed = seeding.split(root)
    params = family.init_params(family.sample(task_seed), init_seed)
    return [p[0] for p in params]


def build_learner(config, family, learner: str | None = None, num_inner_steps=None) -> MetaLearner:
    """The meta-learner `config.meta.learner` (or `learner`) on `family`, at its initial values."""
    cfg = config.meta
    name = cfg.learner if learner is None else learner
    cls = lookup(META_LEARNERS, name, "meta-learner")
    init = initial_meta_params(family, config.seed)
    if name == "metasgd":
        shapes = [p.shape.as_list() for p in init]
        rule = PerParameterSGD(shapes, tuple(cfg.rate_init_range), config.seed, init[0].dtype)
    else:
        rule = make_rule({"name": cfg.inner_optimizer, "learning_rate": cfg.inner_learning_rate})
    kwargs = {"lam": cfg.lam, "cg_steps": cfg.cg_steps} if name == "imaml" else {}
    steps = cfg.num_inner_steps if num_inner_steps is None else num_inner_steps
    return cls(family, init, rule, steps, **kwargs)


class MetaTrainStep:
    """A compiled block of meta-iterations: `step(start, count, total)`.

    Meta-iteration i draws its meta-batch from `seeding.task_seed(seed, TRAIN, i)`, so a resumed
    run sees the same tasks as an uninterrupted one. `start`, `count` and `total` are tensors:
    one trace serves every block. Non-finite meta-losses or gradients are skipped and counted.
    """

    def __init__(
        self,
        learner: MetaLearner,
        meta_optimizer: MetaOptimizer,
        seed: int,
        clip_grad_norm: float = 0.0,
        lr_schedule: str = "constant",
        jit_compile: bool = False,
    ):
        self.learner = learner
        self.meta_optimizer = meta_optimizer
        self.seed = int(seed)
        self.clip_grad_norm = float(clip_grad_norm)
        self.lr_schedule = lr_schedule
        self.base_learning_rate = float(meta_optimizer.rule.learning_rate.numpy())
        self.trace_count = 0
        self._fn = tf.function(self._run, jit_compile=jit_compile)

    def __call__(self, start: int, count: int, total: int) -> dict:
        """Runs meta-iterations start .. start + count - 1 of a `total`-iteration run.

        Returns:
          {"loss_sum": sum of the finite meta-losses, "skipped": non-finite iterations,
           "grad_norm": the last meta-gradient's global norm}, as numbers.
        """
        out = self._fn(
            tf.constant(start, tf.int64), tf.constant(count, tf.int64), tf.constant(total, tf.int64)
        )
        return {k: v.numpy().item() for k, v in out.items()}

    def _run(self, start, count, total):
        self.trace_count += 1  # Python side effect: runs once per trace
        learner, lr = self.learner, self.meta_optimizer.rule.learning_rate
        loss_sum = tf.zeros([], tf.float64)
        skipped = tf.zeros([], tf.int64)
        grad_norm = tf.zeros([], tf.float64)
        for j in tf.range(count):
            i = start + j
            if self.lr_schedule == "linear":  # Reptile's annealing: epsilon_i = eps0 (1 - i/N)
                frac = 1.0 - tf.cast(i, tf.float64) / tf.cast(total, tf.float64)
                lr.assign(self.base_learning_rate * tf.maximum(frac, 0.0))
            episode_seed = seeding.task_seed(self.seed, seeding.TRAIN, i)
            task, support, query, _ = sample_episode(learner.family, episode_seed)
            meta_loss, grads = learner.outer_grad(task, support, query)
            norm = tf.linalg.global_norm(grads)
            finite = tf.math.is_finite(meta_loss) & tf.math.is_finite(norm)
            if self.clip_grad_norm > 0:
                grads, _ = tf.clip_by_global_norm(grads, self.clip_grad_norm, use_norm=norm)
            if finite:
                self.meta_optimizer.apply(grads)
            loss_sum += tf.where(finite, tf.cast(meta_loss, tf.float64), 0.0)
            skipped += tf.cast(tf.logical_not(finite), tf.int64)
            grad_norm = tf.cast(norm, tf.float64)
        return {"loss_sum": loss_sum, "skipped": skipped, "grad_norm": grad_norm}


def make_curve_fn(
    learner: MetaLearner, num_steps: int, random_init: bool = False, metric: bool = False
):
    """A compiled function: episode seed -> query losses [num_steps + 1, members].

    Row t is each task's query loss after t adaptation steps of the learner's inner rule on the
    support set, starting from the learned theta (or, with `random_init`, from the family's
    random initialization of each task). With `metric`, the family's metric (`member_metric`,
    e.g. query accuracy) instead of its loss. No meta-gradient is taken.
    """

    @tf.function
    def curve(episode_seed):
        family = learner.family
        task, support, query, init_seed = sample_episode(family, episode_seed)
        if random_init:
            params = family.init_params(task, init_seed)
        else:
            params = learner.initial_params()
        return learner.adaptation(
            task, support, params, num_steps, False, query=query, metric=metric
        )[1]

    return curve


def meta_train(step: MetaTrainStep, num_iterations: int, block: int) -> dict:
    """Runs `num_iterations` meta-iterations from 0 in blocks (no work directory): baselines."""
    done, loss_sum, skipped = 0, 0.0, 0
    while done < num_iterations:
        count = min(block, num_iterations - done)
        out = step(done, count, num_iterations)
        done += count
        loss_sum += out["loss_sum"]
        skipped += out["skipped"]
    return {"mean_loss": loss_sum / max(num_iterations - skipped, 1), "skipped": skipped}


def train(config, workdir, *, overwrite: bool = False, log=print) -> dict:
    """Meta-trains `config.meta.learner` in `workdir`, resuming if it was started before.

    Args:
      config: a resolved config (configs/*_sinusoid.py).
      workdir: where checkpoints, logs and the best meta-parameters go.
      overwrite: start over even if `workdir` holds a run with a different config.
      log: where progress lines go.

    Returns:
      A summary: iterations done, best validation loss, wall time, meta-iterations per second,
      skipped updates, and `interrupted` (the signal's name) and `exit_status` (128 + its
      number) if a signal stopped the run.
    """
    from l2l_tf.training import WorkdirLock, _StopRequest, prepare_workdir

    validate(config)
    workdir = Path(workdir)
    cfg = config.meta
    family = build_family(config, cfg.meta_batch_size)
    if family.describe():
        log(family.describe())
    learner = build_learner(config, family)
    workdir.mkdir(parents=True, exist_ok=True)
    with WorkdirLock(workdir):
        prepare_workdir(config, workdir, overwrite)
        meta_rule = make_rule({"name": cfg.optimizer, "learning_rate": cfg.learning_rate})
        meta_optimizer = MetaOptimizer(meta_rule, learner.meta_params)
        step = MetaTrainStep(
            learner,
            meta_optimizer,
            config.seed,
            clip_grad_norm=cfg.clip_grad_norm,
            lr_schedule=cfg.lr_schedule,
            jit_compile=cfg.get("jit_compile", False),
        )
        with _StopRequest() as stop:
            return _train_loop(config, workdir, learner, meta_optimizer, step, stop, log)


def _train_loop(config, workdir, learner, meta_optimizer, step, stop, log):
    from l2l_tf.training import resume, save_best

    cfg, train_cfg = config.meta, config.train
    total = train_cfg.num_meta_iterations
    iteration = tf.Variable(0, dtype=tf.int64, name="iteration")
    best_val = tf.Variable(math.inf, dtype=tf.float64, name="best_val_loss")
    skipped = tf.Variable(0, dtype=tf.int64, name="skipped_updates")
    ckpt = tf.train.Checkpoint(
        learner=learner,
        meta_optimizer=meta_optimizer,
        iteration=iteration,
        best_val_loss=best_val,
        skipped_updates=skipped,
    )
    manager, _ = resume(ckpt, iteration, workdir, train_cfg.keep_checkpoints, log)

    num_val = train_cfg.num_val_tasks
    val_learner = learner.with_family(
        build_family(config, tasks_per_call(config, num_val), split="val")
    )
    val_fn = make_curve_fn(val_learner, cfg.num_inner_steps)

    def validate_and_keep_best(i):
        val, _ = evaluation.validation_score(val_fn, val_learner.family, config.seed, num_val)

        improved = val < float(best_val.numpy())
        if improved:
            best_val.assign(val)
            save_best(
                learner,
                workdir,
                {"iteration": i, "val_query_loss_mean": val, "num_val_tasks": num_val},
            )
        return val, improved

    writer = tf.summary.create_file_writer(str(workdir / "train"))
    metrics_path = workdir / "metrics.jsonl"
    i = int(iteration.numpy())
    start_time = time.time()
    window = {"loss_sum": 0.0, "count": 0, "skipped": 0, "start": time.time(), "iters": 0}
    consecutive_skips = 0
    train_seconds, train_iters = 0.0, 0
    log(
        f"meta-training {cfg.learner} for {total} meta-iterations (meta-batch "
        f"{cfg.meta_batch_size}, {cfg.num_inner_steps} inner steps) in {workdir}"
    )

    def next_boundary(i):
        ends = [total, i + cfg.iterations_per_call]
        for every in (train_cfg.log_every, train_cfg.eval_every, train_cfg.checkpoint_every):
            ends.append((i // every + 1) * every)
        return min(ends)

    while i < total and stop.signal is None:
        count = next_boundary(i) - i
        t0 = time.time()
        out = step(i, count, total)
        train_seconds += time.time() - t0
        train_iters += count
        i += count
        iteration.assign(i)
        skipped.assign_add(out["skipped"])
        window["loss_sum"] += out["loss_sum"]
        window["count"] += count - out["skipped"]
        window["skipped"] += out["skipped"]
        window["iters"] += count
        consecutive_skips = consecutive_skips + count if out["skipped"] == count else 0
        if consecutive_skips >= train_cfg.max_consecutive_skips:
            raise UserError(
                f"meta-training diverged: every meta-update of meta-iterations "
                f"{i - consecutive_skips + 1}-{i} was non-finite and skipped; the last good "
                f"checkpoint is in {workdir / 'ckpt'}"
            )

        if i % train_cfg.log_every == 0 or i == total:
            elapsed = time.time() - window["start"]
            rate = window["iters"] / elapsed if elapsed > 0 else math.nan
            mean_loss = window["loss_sum"] / window["count"] if window["count"] else math.nan
            record = {
                "iteration": i,
                "meta_loss": mean_loss,
                "grad_norm": out["grad_norm"],
                "iterations_per_s": rate,
                "skipped_updates": int(skipped.numpy()),
                "wall_s": time.time() - start_time,
            }
            with writer.as_default(step=i):
                for key in ("meta_loss", "grad_norm", "iterations_per_s"):
                    tf.summary.scalar(key, record[key])
            l2l_io.append_jsonl(metrics_path, record)
            log(
                f"iter {i}/{total}  meta-loss {mean_loss:.4g}  |grad| {out['grad_norm']:.3g}  "
                f"{rate:.1f} it/s  skipped {record['skipped_updates']}"
            )
            window = {"loss_sum": 0.0, "count": 0, "skipped": 0, "start": time.time(), "iters": 0}

        if i % train_cfg.eval_every == 0 or i == total:
            val, improved = validate_and_keep_best(i)
            with writer.as_default(step=i):
                tf.summary.scalar("val_query_loss_mean", val)
            l2l_io.append_jsonl(
                metrics_path, {"iteration": i, "val_query_loss_mean": val, "best": improved}
            )
            log(
                f"  validation query loss after {cfg.num_inner_steps} step(s) {val:.4g}"
                + ("  (new best, saved)" if improved else "")
            )
            window["start"] = time.time()  # keep validation out of the throughput figure

        if i % train_cfg.checkpoint_every == 0 or i == total:
            manager.save(checkpoint_number=i)

    writer.flush()
    summary = {
        "iterations": i,
        "best_val_query_loss_mean": float(best_val.numpy()),
        "wall_s": time.time() - start_time,
        "iterations_per_s": train_iters / train_seconds if train_seconds > 0 else math.nan,
        "skipped_updates": int(skipped.numpy()),
    }
    stop.finish(summary, lambda n: manager.save(checkpoint_number=n), i, log)

    log(
        f"done: {i} meta-iterations in {summary['wall_s']:.1f}s "
        f"({summary['iterations_per_s']:.1f} meta-iterations/s while training)"
    )
    return summary


__all__ = [
    "INIT_LEARNERS",
    "MetaTrainStep",
    "build_family",
    "build_learner",
    "make_curve_fn",
    "meta_train",
    "tasks_per_call",
    "train",
    "validate",
]
