"""The work directory: its lock, its config check, checkpoints to resume from, best/, signals.

Every experiment's run goes through these, so all of them resume, keep their best
meta-parameters and stop on a signal the same way (see `l2l_tf.run.loop`).
"""

import fcntl
import json
import os
import shutil
import signal
from pathlib import Path

import tensorflow as tf

from l2l_tf import config as config_lib
from l2l_tf import io as l2l_io
from l2l_tf.errors import UserError, first_line

BEST_DIR = "best"


BEST_PREFIX = "model"


class StopRequest:
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
    return json.loads((best / "info.json").read_text())


def _checkpoint_manager(ckpt, directory: Path, keep: int, log) -> tf.train.CheckpointManager:
    try:
        return tf.train.CheckpointManager(ckpt, str(directory), max_to_keep=keep)
    except Exception as e:  # an unreadable 'checkpoint' state file (e.g. cut short by a kill)
        log(
            f"warning: {directory / 'checkpoint'} is unreadable ({first_line(e)}); "
            "rebuilding it from the checkpoint files"
        )
        (directory / "checkpoint").unlink(missing_ok=True)
        return tf.train.CheckpointManager(ckpt, str(directory), max_to_keep=keep)


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
                f"warning: checkpoint {path} is unreadable ({first_line(e)}); "
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
        trim_metrics(workdir / "metrics.jsonl", int(iteration))
    return manager, restored


def trim_metrics(path: Path, iteration: int) -> None:
    """Drops metrics records past `iteration`: the resumed run will log those steps again."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut short by a kill
        if record.get("iteration", 0) <= iteration:
            kept.append(line + "\n")
    l2l_io.write_text(path, "".join(kept))
