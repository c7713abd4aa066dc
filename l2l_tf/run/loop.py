"""The one training loop: every experiment's meta-training goes through `train_loop`.

An experiment hands the loop a `Trainer`: its resumable state (a `tf.train.Checkpoint`), a
compiled `step` that runs a block of meta-iterations, and how to summarize and validate. The loop
runs blocks between log, validation and checkpoint boundaries, so Python runs once per block; it
writes the same records for every experiment to the console, TensorBoard (`WORKDIR/train/`) and
`WORKDIR/metrics.jsonl`, counts skipped (non-finite) meta-updates and stops on too many in a row,
keeps the best meta-parameters by validation in `WORKDIR/best/`, resumes from `WORKDIR/ckpt/`,
and stops cleanly on SIGINT/SIGTERM with a checkpoint.
"""

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import tensorflow as tf

from l2l_tf import io as l2l_io
from l2l_tf.errors import UserError, first_line
from l2l_tf.run import workdir as workdir_lib


@dataclass
class Validation:
    """How an experiment scores its meta-parameters on held-out tasks, and keeps the best.

    Attributes:
      key: the metrics.jsonl field of the score (lower is better), e.g. "val_final_loss_mean".
      score: iteration -> the score of the current meta-parameters.
      module: what WORKDIR/best/ saves (the learned rule, the learner).
      info: (iteration, score) -> the best/info.json of a new best.
      describe: score -> the console line after a validation.
      best: the best score so far (checkpointed, so a resumed run keeps comparing with it).
    """

    key: str
    score: Callable[[int], float]
    module: tf.Module
    info: Callable[[int, float], dict]
    describe: Callable[[float], str]
    best: tf.Variable = field(
        default_factory=lambda: tf.Variable(math.inf, dtype=tf.float64, name="best_val_loss")
    )


@dataclass
class Trainer:
    """What an experiment gives `train_loop`.

    Attributes:
      state: the resumable objects (name -> trackable) besides the loop's own counters.
      step: (start, count, total) -> outputs of meta-iterations start..start+count-1, a dict of
        numbers with "skipped" (how many of them were non-finite and not applied).
      log_fields: the outputs since the last log -> the experiment's fields of a log record.
      log_text: a log record -> the console line's middle part.
      scalars: the record fields written to TensorBoard.
      iteration: the meta-iterations done; None: the loop makes one (checkpointed as
        "iteration"), else the experiment's own variable, already inside `state`.
      block: the most meta-iterations one `step` call runs.
      count_skips: keep a checkpointed count of skipped meta-updates ("skipped_updates").
      validation: how to validate and keep the best, or None (no best/).
      after_restore: called with the restored iteration after a checkpoint was restored.
      before_save: called before every checkpoint save.
      tensorboard_step: a log record -> its TensorBoard step (default: the iteration).
      summary_fields: () -> fields added to the returned summary.
      unit: what one iteration is called in messages.
      describe: the line printed when the loop starts.
      trace_count: () -> how often `step` was traced (compile time is reported apart).
    """

    state: dict
    step: Callable[[int, int, int], dict]
    log_fields: Callable[[list], dict]
    log_text: Callable[[dict], str]
    scalars: tuple
    iteration: tf.Variable | None = None
    block: int = 1
    count_skips: bool = True
    validation: Validation | None = None
    after_restore: Callable[[int], None] = lambda iteration: None
    before_save: Callable[[], None] = lambda: None
    tensorboard_step: Callable[[dict], int] = lambda record: record["iteration"]
    summary_fields: Callable[[], dict] = dict
    unit: str = "meta-iteration"
    describe: str = ""
    trace_count: Callable[[], int] = lambda: 0


def checkpoint_of(trainer: Trainer) -> tuple[tf.train.Checkpoint, tf.Variable, tf.Variable | None]:
    """The trainer's `tf.train.Checkpoint` with the loop's counters: (checkpoint, iteration,
    skipped). The names are those of work directories written before this loop existed."""
    objects = dict(trainer.state)
    iteration = trainer.iteration
    if iteration is None:
        iteration = objects["iteration"] = tf.Variable(0, dtype=tf.int64, name="iteration")
    if trainer.validation is not None:
        objects["best_val_loss"] = trainer.validation.best
    skipped = None
    if trainer.count_skips:
        skipped = objects["skipped_updates"] = tf.Variable(
            0, dtype=tf.int64, name="skipped_updates"
        )
    return tf.train.Checkpoint(**objects), iteration, skipped


def next_boundary(i: int, total: int, block: int, everies) -> int:
    """The first iteration after `i` at which the loop must stop a block: the end of the run,
    `block` iterations on, or a multiple of one of `everies`."""
    ends = [total, i + block]
    ends += [(i // every + 1) * every for every in everies]
    return min(ends)


def _eta(done: int, total: int, seconds: float, iterations: int) -> str:
    if iterations <= 0 or seconds <= 0 or done >= total:
        return ""
    remaining = (total - done) * seconds / iterations
    return f"  ETA {time.strftime('%H:%M:%S', time.gmtime(remaining))}"


def _write_failed(what: str, error: Exception, workdir: Path) -> UserError:
    """The one-line error for a write that failed (a full disk, a file-size limit, no
    permission): what failed, why, and which complete checkpoint the same command resumes."""
    reason = re.sub(r"^\{\{[^}]*\}\}\s*", "", first_line(error))  # TensorFlow's op prefix
    paths = workdir_lib.checkpoint_paths(workdir / "ckpt")
    resume_from = f"resumes from {paths[0]}" if paths else "starts over"
    return UserError(
        f"could not write {what} in {workdir} ({reason}); nothing complete was lost: "
        f"make room and run the same command again (it {resume_from})"
    )


def _guarded(what: str, workdir: Path, write: Callable, *args):
    try:
        return write(*args)
    except (OSError, tf.errors.OpError) as e:
        raise _write_failed(what, e, workdir) from None


def train_loop(trainer: Trainer, workdir: Path, train_cfg, *, log=print) -> dict:
    """Runs `trainer` to `train_cfg.num_meta_iterations` in `workdir`, resuming if it can.

    Args:
      trainer: the experiment's state, step and reporting.
      workdir: the (locked, prepared) work directory.
      train_cfg: the config's `train` section (num_meta_iterations, log_every, eval_every where
        there is validation, checkpoint_every, keep_checkpoints, max_consecutive_skips where
        skips are counted).
      log: where progress lines go.

    Returns:
      A summary: iterations, wall time, meta-iterations per second while training, skipped
      updates, the best validation score where there is validation, the trainer's summary
      fields, and `interrupted` (the signal's name) and `exit_status` (128 + its number) if a
      signal stopped the run.

    Raises:
      UserError: if `train_cfg.max_consecutive_skips` meta-updates in a row were non-finite,
        or a checkpoint, best/ or metrics.jsonl could not be written (a full disk, a
        file-size limit): the message names the checkpoint the same command resumes from.
    """
    workdir = Path(workdir)
    total = train_cfg.num_meta_iterations
    ckpt, iteration, skipped = checkpoint_of(trainer)
    manager, restored = workdir_lib.resume(
        ckpt, iteration, workdir, train_cfg.keep_checkpoints, log
    )
    if restored:
        trainer.after_restore(int(iteration.numpy()))
    validation = trainer.validation
    everies = [train_cfg.log_every, train_cfg.checkpoint_every]
    if validation is not None:
        everies.append(train_cfg.eval_every)
    max_skips = train_cfg.max_consecutive_skips if trainer.count_skips else None

    def save(i):
        trainer.before_save()
        _guarded(f"checkpoint {i}", workdir, manager.save, i)

    writer = tf.summary.create_file_writer(str(workdir / "train"))
    metrics_path = workdir / "metrics.jsonl"
    i = int(iteration.numpy())
    start_time = time.time()
    train_seconds, train_iters = 0.0, 0
    # The window's rate counts the steps that did not trace (compiling is reported apart).
    window, window_iters, window_seconds, consecutive_skips = [], 0, 0.0, 0
    if trainer.describe:
        log(trainer.describe)
    with workdir_lib.StopRequest() as stop:
        while i < total and stop.signal is None:
            count = next_boundary(i, total, trainer.block, everies) - i
            traces = trainer.trace_count()
            t0 = time.time()
            out = trainer.step(i, count, total)
            seconds = time.time() - t0
            if trainer.trace_count() > traces:  # tracing and compiling, reported apart
                log(f"compiled the meta-step in {seconds:.1f}s")
                _guarded(
                    "metrics.jsonl",
                    workdir,
                    l2l_io.append_jsonl,
                    metrics_path,
                    {"iteration": i + count, "compile_s": seconds},
                )
            else:
                train_seconds += seconds
                train_iters += count
                window_seconds += seconds
                window_iters += count
            i += count
            iteration.assign(i)
            window.append(out)
            if skipped is not None:
                skipped.assign_add(out["skipped"])
                consecutive_skips = consecutive_skips + count if out["skipped"] == count else 0
                if consecutive_skips >= max_skips:
                    raise UserError(
                        f"meta-training diverged: {consecutive_skips} consecutive non-finite "
                        f"meta-updates were skipped ({trainer.unit}s "
                        f"{i - consecutive_skips + 1}-{i}); the last good checkpoint is in "
                        f"{workdir / 'ckpt'}"
                    )

            if i % train_cfg.log_every == 0 or i == total:
                record = {"iteration": i, **trainer.log_fields(window)}
                record["iterations_per_s"] = (
                    window_iters / window_seconds if window_seconds > 0 else math.nan
                )
                if skipped is not None:
                    record["skipped_updates"] = int(skipped.numpy())
                record["wall_s"] = time.time() - start_time
                with writer.as_default(step=trainer.tensorboard_step(record)):
                    for key in (*trainer.scalars, "iterations_per_s"):
                        if math.isfinite(record[key]):
                            tf.summary.scalar(key, record[key])
                _guarded("metrics.jsonl", workdir, l2l_io.append_jsonl, metrics_path, record)
                line = f"iter {i}/{total}  {trainer.log_text(record)}  "
                rate = record["iterations_per_s"]
                # A window whose steps all included compiling has no training rate.
                line += f"{rate:.1f} it/s" if math.isfinite(rate) else "rate n/a (compile)"
                if skipped is not None:
                    line += f"  skipped {record['skipped_updates']}"
                log(line + _eta(i, total, train_seconds, train_iters))
                window, window_iters, window_seconds = [], 0, 0.0

            if validation is not None and (i % train_cfg.eval_every == 0 or i == total):
                val = validation.score(i)
                improved = val < float(validation.best.numpy())
                if improved:
                    validation.best.assign(val)
                    _guarded(
                        "best/",
                        workdir,
                        workdir_lib.save_best,
                        validation.module,
                        workdir,
                        validation.info(i, val),
                    )
                with writer.as_default(step=i):
                    tf.summary.scalar(validation.key, val)
                _guarded(
                    "metrics.jsonl",
                    workdir,
                    l2l_io.append_jsonl,
                    metrics_path,
                    {"iteration": i, validation.key: val, "best": improved},
                )
                log(f"  {validation.describe(val)}" + ("  (new best, saved)" if improved else ""))

            if i % train_cfg.checkpoint_every == 0 or i == total:
                save(i)

        writer.flush()
        summary = {
            "iterations": i,
            "wall_s": time.time() - start_time,
            "iterations_per_s": train_iters / train_seconds if train_seconds > 0 else math.nan,
        }
        if skipped is not None:
            summary["skipped_updates"] = int(skipped.numpy())
        if validation is not None:
            summary[f"best_{validation.key}"] = float(validation.best.numpy())
        summary.update(trainer.summary_fields())
        stop.finish(summary, save, i, log, trainer.unit)
    if "interrupted" not in summary:
        log(
            f"done: {i} {trainer.unit}s in {summary['wall_s']:.1f}s "
            f"({summary['iterations_per_s']:.1f}/s while training); run directory {workdir}; "
            f"next: python evaluate.py --workdir={workdir}"
        )
    return summary
