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
    """An exclusive `flock` on WORKDIR/.lock; the kernel drops it when the process dies.

    The file is never removed and holds the pid of the last holder, so a lock file left by a
    killed process is stale by construction (nothing holds its flock) and never blocks a run.
    """

    def __init__(self, workdir: Path):
        self.path = workdir / ".lock"
        self._fd = None

    def __enter__(self):
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(self._fd, 32).decode(errors="replace").strip()
            os.close(self._fd)
            pid = f" (pid {holder})" if holder.isdigit() else ""
            raise UserError(
                f"work directory {str(self.path.parent)!r} is in use by another "
                f"train_optimizer.py process{pid}; wait for it to finish or stop it first"
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
    l2l_io.recover_dir(workdir / BEST_DIR)
    remove_stale_temporaries(workdir)
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


def remove_stale_temporaries(workdir: Path) -> None:
    """Deletes the temporary files a killed run can leave: half-written checkpoints
    (`ckpt/ckpt-N_temp/`, `ckpt/checkpoint.tmp*`), `.best.tmp/` and `l2l_tf.io`'s `.*.tmp`.

    Only while holding the work directory's lock: nobody else is writing them then.
    """
    workdir = Path(workdir)
    for path in (
        *workdir.glob("ckpt/ckpt-*_temp"),
        *workdir.glob("ckpt/checkpoint.tmp*"),
        *workdir.glob(f".{BEST_DIR}.tmp"),
        *workdir.glob(".*.tmp"),
    ):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def save_best(rule, workdir: Path, info: dict) -> None:
    """Atomically replaces WORKDIR/best/ with the rule's variables and `info.json`."""
    tmp = workdir / f".{BEST_DIR}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tf.train.Checkpoint(rule=rule).write(str(tmp / BEST_PREFIX))
    l2l_io.write_json(tmp / "info.json", info)
    l2l_io.replace_dir(tmp, workdir / BEST_DIR)


def restore_best(rule, workdir) -> dict:
    """Loads WORKDIR/best/ into `rule`; returns its info.

    If a kill landed between the two renames of `l2l_io.replace_dir`, the previous best/
    (renamed aside to `best.old/`) is read; nothing is moved, as a run may be writing.

    Raises:
      UserError: if there is no best checkpoint, its info.json is not a JSON object with an
        integer "iteration", or its variables are unreadable or do not match `rule`.
    """
    best = Path(workdir) / BEST_DIR
    if not best.exists():
        best = l2l_io.old_version(best)
    if not (best / "info.json").is_file() or not (best / f"{BEST_PREFIX}.index").is_file():
        raise UserError(
            f"no trained optimizer in {str(workdir)!r} ({Path(workdir) / BEST_DIR} is missing); "
            "run train_optimizer.py first"
        )
    try:
        info = json.loads((best / "info.json").read_text())
    except (ValueError, UnicodeDecodeError) as e:
        info = first_line(e)
    if not isinstance(info, dict) or not isinstance(info.get("iteration"), int):
        reason = info if isinstance(info, str) else 'no integer "iteration"'
        raise UserError(
            f"{best / 'info.json'} is damaged ({reason}); best/ cannot be trusted: "
            "retrain with --overwrite or restore it from a copy"
        )
    try:
        tf.train.Checkpoint(rule=rule).read(str(best / BEST_PREFIX)).assert_consumed()
    except Exception as e:  # a mismatch, or a truncated file (IndexError, DataLossError, ...)
        raise UserError(
            f"the checkpoint in {best} is unreadable or does not match the config's rule "
            f"architecture: {first_line(e)}"
        ) from None
    return info


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
    `iteration` (all of them when no checkpoint was restored) are dropped because the resumed
    run logs those steps again.

    Returns:
      (the CheckpointManager to save with, the restored prefix or None).
    """
    remove_stale_temporaries(workdir)
    manager = _checkpoint_manager(ckpt, workdir / "ckpt", keep, log)
    restored = restore_latest(ckpt, workdir / "ckpt", log)
    if restored:
        log(f"resuming from {restored} at meta-iteration {int(iteration)}")
    trim_metrics(workdir / "metrics.jsonl", int(iteration) if restored else 0, log)
    return manager, restored


def trim_metrics(path: Path, iteration: int, log=print) -> None:
    """Drops metrics records past `iteration`: the resumed run will log those steps again.

    A line that is not a JSON record (cut short by a full disk, or damaged) is dropped with a
    warning that counts them.
    """
    if not path.exists():
        return
    text = path.read_text(errors="replace")
    kept, unreadable = [], []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            unreadable.append(number)
            continue
        if record.get("iteration", 0) <= iteration:
            kept.append(line + "\n")
    if unreadable:
        log(
            f"warning: dropped {len(unreadable)} unreadable line(s) of {path} "
            f"(line {', '.join(map(str, unreadable[:5]))}{', ...' if len(unreadable) > 5 else ''})"
        )
    new = "".join(kept)
    if new != text:
        l2l_io.write_text(path, new)
