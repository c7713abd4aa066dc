"""Atomic file writes: a reader never sees a half-written file.

Each write goes to a temporary file in the same directory, is flushed to disk, and is renamed
over the target (rename is atomic on POSIX), so a run killed mid-write leaves the previous
version intact.
"""

import errno
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
    """Appends one JSON line with a single write, so a kill cannot leave a partial record.

    A write cut short (a full disk, a file-size limit) is undone, so the file never ends in a
    torn line, and raises OSError.
    """
    line = (json.dumps(_finite_or_none(record)) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        try:
            written = os.write(fd, line)
        except OSError:
            os.ftruncate(fd, size)
            raise
        if written != len(line):
            os.ftruncate(fd, size)
            raise OSError(errno.EFBIG, f"only {written} of {len(line)} bytes written", str(path))
    finally:
        os.close(fd)


def read_jsonl(path, log=print) -> list:
    """The records of a JSON-lines file such as metrics.jsonl, in order.

    A line that is not a JSON object (cut short, garbled) is skipped with a warning naming its
    line number, so a damaged line costs that record and nothing else.
    """
    records, unreadable = [], []
    for number, line in enumerate(Path(path).read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict):
            records.append(record)
        else:
            unreadable.append(number)
    if unreadable:
        shown = ", ".join(map(str, unreadable[:5])) + (", ..." if len(unreadable) > 5 else "")
        log(f"warning: skipped {len(unreadable)} unreadable line(s) of {path} (line {shown})")
    return records


def replace_dir(tmp_dir, target_dir) -> None:
    """Moves a fully written `tmp_dir` into place as `target_dir`.

    The old directory is first renamed aside (to `old_version(target_dir)`), then removed after
    the swap, so at every instant at least one complete version exists on disk; `recover_dir`
    puts the old one back if a kill landed between the two renames.
    """
    tmp_dir, target_dir = Path(tmp_dir), Path(target_dir)
    old = old_version(target_dir)
    recover_dir(target_dir)
    if old.exists():
        shutil.rmtree(old)
    if target_dir.exists():
        os.replace(target_dir, old)
    os.replace(tmp_dir, target_dir)
    if old.exists():
        shutil.rmtree(old)


def old_version(target_dir) -> Path:
    """Where `replace_dir` keeps the previous `target_dir` during the swap."""
    target_dir = Path(target_dir)
    return target_dir.with_name(target_dir.name + ".old")


def recover_dir(target_dir) -> None:
    """Renames the previous version back to `target_dir` if `replace_dir` was killed between
    its renames (only by the directory's one writer)."""
    old = old_version(target_dir)
    if not Path(target_dir).exists() and old.exists():
        os.replace(old, target_dir)


def _finite_or_none(obj):
    if isinstance(obj, float):
        return obj if obj == obj and abs(obj) != float("inf") else None
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_none(v) for v in obj]
    return obj
