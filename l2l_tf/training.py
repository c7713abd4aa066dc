"""The meta-training loop: resume, log, validate, keep the best, checkpoint.

`train(config, workdir)` is everything `train_optimizer.py` does. Only the unroll is compiled
(`TruncatedBPTT.meta_step`); this Python loop sequences unrolls into episodes, logs to the
console, TensorBoard (`WORKDIR/train/`) and `WORKDIR/metrics.jsonl`, evaluates the learned rule
on held-out validation tasks to keep the best meta-parameters in `WORKDIR/best/`, and saves every
piece of resumable state with a `tf.train.CheckpointManager` in `WORKDIR/ckpt/`.
"""

import fcntl
import math
import os
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from l2l_tf import config as config_lib
from l2l_tf import evaluation, seeding
from l2l_tf import io as l2l_io
from l2l_tf.errors import UserError
from l2l_tf.meta import MetaOptimizer, TruncatedBPTT, distributed
from l2l_tf.meta.optimizer import learning_rate_factor
from l2l_tf.optimizers import make_rule
from l2l_tf.problems import make_task_family
from l2l_tf.unroll import make_trajectory_fn

BEST_DIR = "best"
BEST_PREFIX = "model"


class EpisodeState(tf.Module):
    """Variables holding the params and rule state of the episode in progress.

    They are written only when a checkpoint is saved, so that a resumed run continues the
    interrupted episode exactly instead of starting a new one.
    """

    def __init__(self, params, rule_state):
        super().__init__(name="episode")
        self.params = [tf.Variable(p, trainable=False) for p in params]
        self._structure = rule_state
        self.rule_state = [tf.Variable(t, trainable=False) for t in tf.nest.flatten(rule_state)]

    def store(self, params, rule_state) -> None:
        for v, t in zip(self.params, params):
            v.assign(t)
        for v, t in zip(self.rule_state, tf.nest.flatten(rule_state)):
            v.assign(t)

    def load(self):
        params = [v.read_value() for v in self.params]
        state = tf.nest.pack_sequence_as(self._structure, [v.read_value() for v in self.rule_state])
        return params, state


class _StopRequest:
    """SIGINT/SIGTERM set a flag; the loop stops after the current meta-step and checkpoints."""

    def __init__(self):
        self.signal = None
        self._previous = {}

    def __enter__(self):
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        except ValueError:  # not the main thread: signals cannot be caught here
            pass
        return self

    def _handle(self, signum, frame):
        self.signal = signal.Signals(signum)

    def finish(self, summary: dict, save, iteration: int, log, unit: str = "meta-iteration"):
        """After a training loop: if a signal stopped it, checkpoint and say how to resume.

        Calls `save(iteration)` and adds `interrupted` (the signal's name) and `exit_status`
        (128 + its number, what the mains exit with) to `summary`, which it returns.
        """
        if self.signal is not None:
            save(iteration)
            summary["interrupted"] = self.signal.name
            summary["exit_status"] = 128 + int(self.signal)
            log(
                f"stopped by {self.signal.name} at {unit} {iteration}; checkpoint saved. "
                "Run the same command again to resume."
            )
        return summary

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class WorkdirLock:
    """An exclusive `flock` on WORKDIR/.lock; the kernel drops it when the process dies."""

    def __init__(self, workdir: Path):
        self.path = workdir / ".lock"
        self._fd = None

    def __enter__(self):
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise UserError(
                f"work directory {str(self.path.parent)!r} is in use by another "
                "train_optimizer.py process"
            ) from None
        os.ftruncate(self._fd, 0)
        os.write(self._fd, f"{os.getpid()}\n".encode())
        return self

    def __exit__(self, *exc):
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)


def prepare_workdir(config, workdir: Path, overwrite: bool = False) -> bool:
    """Creates the work directory or checks that an existing one matches `config`.

    Returns:
      True if a previous run's files are there to resume from.

    Raises:
      UserError: if the saved config differs in fields that change what is computed, unless
        `overwrite` (which deletes the previous run).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    saved_path = workdir / "config.json"
    resuming = saved_path.exists()
    if resuming:
        saved = config_lib.load_workdir_config(workdir)
        changed = config_lib.changed_fields(saved, config)
        if changed and not overwrite:
            raise UserError(
                f"{workdir} was trained with a different config ({', '.join(changed)}"
                "); pass --overwrite to start over or use another --workdir"
            )
        if changed or overwrite:
            for name in ("ckpt", BEST_DIR, "train", "eval"):
                shutil.rmtree(workdir / name, ignore_errors=True)
            (workdir / "metrics.jsonl").unlink(missing_ok=True)
            resuming = False
    l2l_io.write_text(saved_path, config_lib.to_json(config))
    return resuming


def build_learned_rule(config):
    """The learned update rule described by `config.rule` (variables initialized from the seed)."""
    return make_rule(config.rule, seed=config.seed)


def save_best(rule, workdir: Path, info: dict) -> None:
    """Atomically replaces WORKDIR/best/ with the rule's variables and `info.json`."""
    tmp = workdir / f".{BEST_DIR}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tf.train.Checkpoint(rule=rule).write(str(tmp / BEST_PREFIX))
    l2l_io.write_json(tmp / "info.json", info)
    l2l_io.replace_dir(tmp, workdir / BEST_DIR)


def restore_best(rule, workdir) -> dict:
    """Loads WORKDIR/best/ into `rule`; returns its info.

    Raises:
      UserError: if there is no best checkpoint or its shapes do not match `rule`.
    """
    best = Path(workdir) / BEST_DIR
    if not (best / "info.json").is_file() or not (best / f"{BEST_PREFIX}.index").is_file():
        raise UserError(
            f"no trained optimizer in {str(workdir)!r} ({best} is missing); "
            "run train_optimizer.py first"
        )
    try:
        tf.train.Checkpoint(rule=rule).read(str(best / BEST_PREFIX)).assert_consumed()
    except (ValueError, AssertionError, tf.errors.OpError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(
            f"the checkpoint in {best} does not match the config's rule architecture: {first}"
        ) from None
    import json

    return json.loads((best / "info.json").read_text())


def train(config, workdir, *, overwrite: bool = False, log=print) -> dict:
    """Meta-trains the learned rule of `config` in `workdir`, resuming if it was started before.

    Args:
      config: a resolved config (see configs/).
      workdir: where checkpoints, logs and the best meta-parameters go.
      overwrite: start over even if `workdir` holds a run with a different config.
      log: where progress lines go.

    Returns:
      A summary: iterations done, best validation loss, wall time, and, if a signal stopped
      the run early, `interrupted` (the signal's name) and `exit_status` (128 + its number).
    """
    config_lib.validate(config)
    # First: a multi-worker strategy must exist before TensorFlow runs any operation.
    strategy = distributed.make_strategy(config.get("distribute", "none"))
    workdir = distributed.worker_workdir(strategy, workdir)
    family = make_task_family(config.problem, config.get("data"))
    if family.describe():
        log(family.describe())
    distributed.check_shardable(family, strategy)
    with distributed.scope(strategy):  # the meta-parameters are mirrored on every replica
        rule = build_learned_rule(config)
    meta_cfg = config.meta
    workdir.mkdir(parents=True, exist_ok=True)
    with WorkdirLock(workdir):
        prepare_workdir(config, workdir, overwrite)
        meta_rule = make_rule({"name": meta_cfg.optimizer, "learning_rate": meta_cfg.learning_rate})
        with distributed.scope(strategy):
            meta_optimizer = MetaOptimizer(meta_rule, rule.trainable_variables)
        learner = TruncatedBPTT(
            family,
            rule,
            meta_optimizer,
            meta_cfg.unroll_length,
            second_derivatives=meta_cfg.second_derivatives,
            clip_grad_norm=meta_cfg.clip_grad_norm or None,
            jit_compile=meta_cfg.jit_compile,
            # Absent from configs (and work directories) written before these options existed.
            static_unroll=meta_cfg.get("static_unroll", False),
            recompute=meta_cfg.get("recompute", False),
            loss_transform=meta_cfg.get("loss_transform", "none"),
        )
        if strategy is not None:
            learner = distributed.DistributedTBPTT(strategy, learner)
        with _StopRequest() as stop:
            return _train_loop(config, workdir, family, rule, meta_optimizer, learner, stop, log)


def _checkpoint_manager(ckpt, directory: Path, keep: int, log) -> tf.train.CheckpointManager:
    try:
        return tf.train.CheckpointManager(ckpt, str(directory), max_to_keep=keep)
    except Exception as e:  # an unreadable 'checkpoint' state file (e.g. cut short by a kill)
        log(
            f"warning: {directory / 'checkpoint'} is unreadable ({_first_line(e)}); "
            "rebuilding it from the checkpoint files"
        )
        (directory / "checkpoint").unlink(missing_ok=True)
        return tf.train.CheckpointManager(ckpt, str(directory), max_to_keep=keep)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def checkpoint_paths(directory: Path) -> list[str]:
    """Checkpoint prefixes in `directory`, newest first (by their number, not the state file)."""
    numbered = []
    for index in Path(directory).glob("ckpt-*.index"):
        suffix = index.name[len("ckpt-") : -len(".index")]
        if suffix.isdigit():
            numbered.append((int(suffix), str(index.with_suffix(""))))
    return [path for _, path in sorted(numbered, reverse=True)]


def restore_latest(ckpt: tf.train.Checkpoint, directory: Path, log=print) -> str | None:
    """Restores the newest readable checkpoint; a corrupt one is reported and skipped.

    Returns:
      The prefix restored, or None if there is no checkpoint at all.

    Raises:
      UserError: if checkpoints exist but none can be read.
    """
    paths = checkpoint_paths(directory)
    for path in paths:
        try:
            ckpt.restore(path).assert_consumed()
            return path
        except Exception as e:  # truncated or empty files fail in many different ways
            log(
                f"warning: checkpoint {path} is unreadable ({_first_line(e)}); "
                "falling back to the previous one"
            )
    if paths:
        raise UserError(f"no readable checkpoint in {directory}; pass --overwrite to start over")
    return None


def resume(ckpt, iteration: tf.Variable, workdir: Path, keep: int, log=print):
    """Opens WORKDIR/ckpt/ for a run and restores its newest readable checkpoint, if any.

    Shared by every training loop, so all of them resume the same way: a corrupt newest
    checkpoint falls back to the previous one, and metrics records past the restored
    `iteration` are dropped because the resumed run logs those steps again.

    Returns:
      (the CheckpointManager to save with, the restored prefix or None).
    """
    manager = _checkpoint_manager(ckpt, workdir / "ckpt", keep, log)
    restored = restore_latest(ckpt, workdir / "ckpt", log)
    if restored:
        log(f"resuming from {restored} at meta-iteration {int(iteration)}")
        _trim_metrics(workdir / "metrics.jsonl", int(iteration))
    return manager, restored


def _trim_metrics(path: Path, iteration: int) -> None:
    """Drops metrics records past `iteration`: the resumed run will log those steps again."""
    if not path.exists():
        return
    import json

    kept = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut short by a kill
        if record.get("iteration", 0) <= iteration:
            kept.append(line + "\n")
    l2l_io.write_text(path, "".join(kept))


def _start_episode(family, rule, seed, episode):
    task_seed, init_seed, batch_seed = seeding.episode_seeds(
        seeding.task_seed(seed, seeding.TRAIN, episode)
    )
    task = family.sample(task_seed)
    params = family.init_params(task, init_seed)
    return task, init_seed, batch_seed, params, rule.init(params)


def _train_loop(config, workdir, family, rule, meta_optimizer, learner, stop, log):
    meta_cfg, train_cfg = config.meta, config.train
    num_unrolls = meta_cfg.num_steps // meta_cfg.unroll_length
    total = train_cfg.num_meta_iterations

    task, init_seed, batch_seed, params, state = _start_episode(family, rule, config.seed, 0)
    episode_state = EpisodeState(params, state)
    iteration = tf.Variable(0, dtype=tf.int64, name="iteration")
    best_val = tf.Variable(math.inf, dtype=tf.float64, name="best_val_loss")
    skipped = tf.Variable(0, dtype=tf.int64, name="skipped_updates")
    ckpt = tf.train.Checkpoint(
        rule=rule,
        meta_optimizer=meta_optimizer,
        episode=episode_state,
        iteration=iteration,
        best_val_loss=best_val,
        skipped_updates=skipped,
    )
    manager, restored = resume(ckpt, iteration, workdir, train_cfg.keep_checkpoints, log)
    if restored:
        episode = int(iteration) // num_unrolls
        task, init_seed, batch_seed, _, _ = _start_episode(family, rule, config.seed, episode)
        params, state = episode_state.load()

    val_fn = make_trajectory_fn(family, rule, meta_cfg.num_steps)

    def validate_and_keep_best(i):
        val_last_steps = train_cfg.get("val_last_steps", 1)
        val, _ = evaluation.validation_score(
            val_fn, family, config.seed, train_cfg.num_val_tasks, val_last_steps
        )

        improved = val < float(best_val.numpy())
        if improved:
            best_val.assign(val)
            save_best(
                rule,
                workdir,
                {
                    "iteration": i,
                    "val_final_loss_mean": val,
                    "num_val_tasks": train_cfg.num_val_tasks,
                    "val_last_steps": val_last_steps,
                },
            )

        return val, improved

    writer = tf.summary.create_file_writer(str(workdir / "train"))
    metrics_path = workdir / "metrics.jsonl"
    i = int(iteration.numpy())
    window, window_start, consecutive_skips = [], time.time(), 0
    start_time = time.time()
    log(
        f"meta-training {total} meta-iterations ({num_unrolls} unrolls of "
        f"{meta_cfg.unroll_length} steps per episode) in {workdir}"
    )

    def checkpoint(i):
        episode_state.store(params, state)
        manager.save(checkpoint_number=i)

    # Absent from work directories written before the schedule existed: a constant rate.
    schedule = meta_cfg.get("lr_schedule", "constant")
    final_fraction = meta_cfg.get("final_lr_fraction", 1.0)

    while i < total and stop.signal is None:
        episode, unroll = divmod(i, num_unrolls)
        if unroll == 0:
            task, init_seed, batch_seed, params, state = _start_episode(
                family, rule, config.seed, episode
            )
        step0 = tf.constant(unroll * meta_cfg.unroll_length, tf.int32)
        meta_optimizer.rule.learning_rate.assign(
            meta_cfg.learning_rate * learning_rate_factor(schedule, i, total, final_fraction)
        )
        traces = learner.trace_count

        step_start = time.time()
        params, state, m = learner.meta_step(params, state, task, batch_seed, step0)
        if learner.trace_count > traces:  # tracing and compiling, reported apart
            compile_s = time.time() - step_start
            log(f"compiled the meta-step in {compile_s:.1f}s")
            l2l_io.append_jsonl(metrics_path, {"iteration": i + 1, "compile_s": compile_s})
            window_start = time.time()  # keep compile time out of the throughput figure
        i += 1

        iteration.assign(i)
        if bool(m["skipped"]):
            skipped.assign_add(1)
            consecutive_skips += 1
            # The optimizee is no longer finite: restart this episode's task from theta_0.
            params = family.init_params(task, init_seed)
            state = rule.init(params)
            if consecutive_skips >= train_cfg.max_consecutive_skips:
                raise UserError(
                    f"meta-training diverged: {consecutive_skips} consecutive non-finite "
                    f"meta-updates were skipped (meta-iterations {i - consecutive_skips + 1}-{i})"
                    f"; the last good checkpoint is in {workdir / 'ckpt'}"
                )
        else:
            consecutive_skips = 0
            window.append(float(m["mean_loss"]))

        if i % train_cfg.log_every == 0 or i == total:
            elapsed = time.time() - window_start
            rate = train_cfg.log_every / elapsed if elapsed > 0 else math.nan
            mean_loss = float(np.mean(window)) if window else math.nan
            record = {
                "iteration": i,
                # The meta-loss of an unroll is the sum of its steps' mean (transformed)
                # losses: log-losses with meta.loss_transform = "log".
                "meta_loss": mean_loss * meta_cfg.unroll_length,
                "mean_loss": mean_loss,
                "grad_norm": float(m["grad_norm"]),
                "unrolls_per_s": rate,
                "skipped_updates": int(skipped.numpy()),
                "wall_s": time.time() - start_time,
            }
            with writer.as_default(step=i):
                for key in ("meta_loss", "mean_loss", "grad_norm", "unrolls_per_s"):
                    tf.summary.scalar(key, record[key])
            l2l_io.append_jsonl(metrics_path, record)
            log(
                f"iter {i}/{total}  meta-loss {record['meta_loss']:.4g} "
                f"(mean loss per step {mean_loss:.4g})  "
                f"|grad| {record['grad_norm']:.3g}  {rate:.1f} unrolls/s  "
                f"skipped {record['skipped_updates']}"
            )
            window, window_start = [], time.time()

        if i % train_cfg.eval_every == 0 or i == total:
            val, improved = validate_and_keep_best(i)
            with writer.as_default(step=i):
                tf.summary.scalar("val_final_loss_mean", val)
            l2l_io.append_jsonl(
                metrics_path, {"iteration": i, "val_final_loss_mean": val, "best": improved}
            )
            log(f"  validation final loss {val:.4g}" + ("  (new best, saved)" if improved else ""))
            window_start = time.time()  # keep validation time out of the throughput figure

        if i % train_cfg.checkpoint_every == 0 or i == total:
            checkpoint(i)

    writer.flush()
    summary = {
        "iterations": i,
        "best_val_final_loss_mean": float(best_val.numpy()),
        "wall_s": time.time() - start_time,
        "skipped_updates": int(skipped.numpy()),
    }
    return stop.finish(summary, checkpoint, i, log)
