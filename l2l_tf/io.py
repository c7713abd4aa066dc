"""Atomic file writes: a reader never sees a half-written file.

Each write goes to a temporary file in the same directory, is flushed to disk, and is renamed
over the target (rename is atomic on POSIX), so a run killed mid-write leaves the previous
version intact.
"""

import json
import os
import shutil
import tempfile
from pathlib import Path


def write_text(path, text: str) -> None:
    """Atomically replaces `path` with `text`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path, obj) -> None:
    """Atomically writes `obj` as indented JSON (NaN and inf are written as null)."""
    write_text(path, json.dumps(_finite_or_none(obj), indent=2, sort_keys=False) + "\n")


def append_jsonl(path, record: dict) -> None:
    """Appends one JSON line with a single write, so a kill cannot leave a partial record."""
    line = json.dumps(_finite_or_none(record)) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def replace_dir(tmp_dir, target_dir) -> None:
    """Moves a fully written `tmp_dir` into place as `target_dir`.

    The old directory is first renamed aside, then removed after the swap, so at every instant
    at least one complete version exists on disk.
    """
    tmp_dir, target_dir = Path(tmp_dir), Path(target_dir)
    old = target_dir.with_name(target_dir.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if target_dir.exists():
        os.replace(target_dir, old)
    os.replace(tmp_dir, target_dir)
    if old.exists():
        shutil.rmtree(old)


def _finite_or_none(obj):
    if isinstance(obj, float):
        return obj if obj == obj and abs(obj) != float("inf") else None
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_none(v) for v in obj]
    return obj
