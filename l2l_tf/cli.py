"""Plumbing of the command-line mains: quiet start-up, help, output checks, one-line errors."""

import os
import re
import sys
import traceback
import warnings
from pathlib import Path

from l2l_tf.errors import UserError

#: The arguments that ask for help (absl's own --help exits with status 1; ours exit 0).
HELP_ARGS = ("--help", "-h", "-?", "--helpshort", "--helpfull")


def quiet_tensorflow() -> None:
    """Imports TensorFlow without its C++ start-up chatter on stderr.

    TF_CPP_MIN_LOG_LEVEL silences most of it, but a few lines are written before TensorFlow's
    logging is initialized, so stderr is pointed at /dev/null for the import itself. An import
    error still propagates (and is printed once stderr is restored). TensorFlow's Python
    warnings are silenced too; L2L_TF_VERBOSE_IMPORT=1 keeps all of it.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if os.environ.get("L2L_TF_VERBOSE_IMPORT"):
        return
    # Expected noise a newcomer reads as failure: TensorFlow's Python-side warnings, such as
    # the retracing note for the evaluation's one tf.function per method (each traced once),
    # are errors-only, like the C++ side.
    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow

        # Device discovery logs (e.g. "failed call to cuInit" on machines without a GPU) too.
        tensorflow.config.list_physical_devices()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def run_main(fn) -> None:
    """Calls `fn()`; a `UserError` becomes `error: ...` on stderr and exit status 2.

    Anything else is a bug in l2l_tf and keeps its traceback. A `UserWarning` raised by the
    library (e.g. a rule that will not transfer) is printed as one `warning: ...` line.
    """
    saved = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        fn()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except Exception:
        traceback.print_exc()
        sys.exit(1)
    finally:
        warnings.showwarning = saved


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"warning: {message}", file=sys.stderr if file is None else file)


def flag_value(argv: list[str], name: str) -> str | None:
    """The value of `--name=V` or `--name V` in `argv`, before absl has parsed it."""
    for i, arg in enumerate(argv):
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
        if arg == f"--{name}" and i + 1 < len(argv):
            return argv[i + 1]
    return None


def _last_line(text: str) -> str:
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _unknown_field_message(argv, text: str) -> str:
    """`unknown config field 'config.a.b'[; did you mean 'c'?]` from ConfigDict's error text."""
    import re

    match = re.search(r'Did you mean "([^"]+)" instead of "([^"]+)"', text)
    if match:
        suggestion, key = match.groups()
    else:
        suggestion, key = None, _last_line(text).strip("'\"")
    overrides = [a[2:].split("=", 1)[0] for a in argv if a.startswith("--config.")]
    bad = next((o for o in overrides if key in o.split(".")), key)
    hint = f"; did you mean {suggestion!r}?" if suggestion else ""
    return f"unknown config field {bad!r}{hint}"


def parse_flags(argv):
    """absl flags parser for the mains: a bad flag is one `error:` line and exit status 2.

    `--help` (or `-h`, `--helpfull`) prints the usage and exits with status 0 before any config
    is loaded.
    """
    import os as _os

    from absl import flags

    if any(a in HELP_ARGS for a in argv[1:]):
        try:
            print_usage(full="--helpfull" in argv[1:])
            sys.stdout.flush()
        except BrokenPipeError:  # `| head`: the reader has gone, which is fine
            _stdout_to_devnull()
        sys.exit(0)
    config_arg = flag_value(argv, "config")
    if config_arg is not None:
        path = config_arg.split(":", 1)[0]
        if not _os.path.isfile(path):
            print(f"error: config file {path!r} not found", file=sys.stderr)
            sys.exit(2)
    try:
        return flags.FLAGS(argv)
    except Exception as e:  # flag errors, and errors raised while loading a config file
        exit_with_flag_error(argv, e)


def print_usage(full: bool = False) -> None:
    """The main's docstring and its flags on stdout (all of absl's too with `full`)."""
    from absl import app, flags

    app.usage(shorthelp=not full, writeto_stdout=True)
    if not full:
        print("\nTry --helpfull to get a list of all flags.")
    if "print_config" in flags.FLAGS:
        print("A config's fields, defaults and meanings: --config=FILE[:VARIANT] --print_config")


def exit_with_flag_error(argv, exc: Exception):
    """Prints a one-line `error:` for an exception raised while parsing flags; exits 2."""
    text = str(exc).replace("\\n", "\n")
    msg = None
    required = re.search(r"Flag --(\w+) must have a value other than None", text)
    if required:
        msg = _required_flag_message(required.group(1))
    elif "Did you mean" in text or isinstance(exc, (KeyError, AttributeError)):
        msg = _unknown_field_message(argv, text)
    if msg is None:
        msg = _last_line(text) if "Traceback" in text else (text.strip().splitlines() or [""])[0]
        msg = _without_exception_class(msg)
    print(f"error: {msg or type(exc).__name__}", file=sys.stderr)
    sys.exit(2)


def _without_exception_class(line: str) -> str:
    """'ValueError: unknown variant ...' -> 'unknown variant ...' (the class is no news)."""
    return re.sub(r"^(?:[\w.]+\.)?[A-Z]\w*(?:Error|Exception): ", "", line)


def _required_flag_message(name: str) -> str:
    if name == "config":
        return "--config=FILE is required (e.g. --config=configs/quadratic.py:quick); see --help"
    return f"--{name} is required; see --help"


def define_workdir_config_flag(argv, workdir: str, help_text: str):
    """Defines --config as `workdir`'s saved config, with its --config.FIELD=VALUE overrides.

    Must run at import time of a main (absl defines flags before parsing). A missing or foreign
    work directory, or a bad override, is one `error:` line and exit status 2.
    """
    from ml_collections import config_flags

    from l2l_tf import config as config_lib

    try:
        saved = config_lib.load_workdir_config(workdir)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    try:  # DEFINE_config_dict applies the --config.FIELD overrides right away
        return config_flags.DEFINE_config_dict("config", saved, help_text)
    except Exception as e:
        exit_with_flag_error(argv, e)


def workdir_config_flag_if_given(argv, help_text: str):
    """`define_workdir_config_flag` for the --workdir named in `argv`; None without one."""
    workdir = flag_value(argv, "workdir")
    return define_workdir_config_flag(argv, workdir, help_text) if workdir else None


def apply_threads(config) -> None:
    """Sets TensorFlow's CPU thread pools from `config.threads` (0 keeps the default).

    Must run before TensorFlow executes its first op, which is why only the mains call it.
    """
    import tensorflow as tf

    threads = config.get("threads") if config is not None else None
    if not threads:
        return
    from l2l_tf.errors import UserError

    for field in ("intra_op", "inter_op"):
        value = threads.get(field, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise UserError(f"threads.{field} must be a non-negative integer, got {value!r}")
    try:
        if threads.get("intra_op"):
            tf.config.threading.set_intra_op_parallelism_threads(threads.intra_op)
        if threads.get("inter_op"):
            tf.config.threading.set_inter_op_parallelism_threads(threads.inter_op)
    except RuntimeError:  # TensorFlow already started (e.g. called twice in one process)
        pass


def check_output_dir(path, flag: str) -> None:
    """Raises a `UserError` unless directory `path` exists or can be created, and is writable.

    The mains call it before any work starts, so that a bad --workdir or --output_dir costs a
    one-line error instead of a finished computation and a traceback.

    Args:
      path: the directory the command will write into (created later if missing).
      flag: the flag that named it, for the message (e.g. "--output_dir").
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag}={str(path)!r} is a file, not a directory")
    existing = path
    while not existing.exists():
        if existing.is_symlink():  # a dangling link: mkdir would fail on it
            raise UserError(f"{flag}={str(path)!r}: {str(existing)!r} is a broken symbolic link")
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(
            f"{flag}={str(path)!r} cannot be created: {str(existing)!r} is a file, not a directory"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{flag}={str(path)!r}: {str(existing)!r} is not writable")


def training_process(workdir, locks_table: str = "/proc/locks") -> int | None:
    """The id of the train_optimizer.py process that holds `workdir`'s lock, or None.

    Reads the kernel's table of `flock` locks (`locks_table`) for the lock file's inode, which
    takes no lock itself, so it cannot make a starting run fail; where that table is missing
    (not Linux), it tries a shared lock for an instant instead and reads the process id the
    lock file holds (docs/workdir.md, "One writer"); -1 when that id is unreadable.
    """
    lock = Path(workdir) / ".lock"
    try:
        inode = lock.stat().st_ino
    except OSError:
        return None
    try:
        table = Path(locks_table).read_text()
    except OSError:
        return _lock_holder_by_trying(lock)
    for row in table.splitlines():
        fields = row.split()
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5].rsplit(":", 1)[-1] == str(inode):
            try:
                return int(fields[4])
            except ValueError:
                return -1
    return None


def _lock_holder_by_trying(lock: Path) -> int | None:
    import fcntl

    fd = os.open(lock, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    except BlockingIOError:
        text = lock.read_text().strip()
        return int(text) if text.isdigit() else -1
    finally:
        os.close(fd)


def config_table(config, meanings: dict, title: str = "") -> str:
    """A markdown table of every field of `config`: its value and its meaning.

    Args:
      config: a (nested) ConfigDict.
      meanings: {dotted field: meaning}; a field without one shows "(undocumented)".
      title: a first line, e.g. the config file and variant.
    """
    from l2l_tf import config as config_lib

    lines = [title, ""] if title else []
    lines += ["| field | default | meaning |", "|---|---|---|"]
    for field, value in config_lib.flatten(config).items():
        shown = value if not isinstance(value, str) else (value or '""')
        if isinstance(value, (tuple, list)) and len(repr(value)) > 60:
            shown = f"{len(value)} entries"
        meaning = meanings.get(field, "(undocumented)").replace("|", "\\|")
        lines.append(f"| `{field}` | {shown} | {meaning} |")
    return "\n".join(lines)


def print_config(config, source: str, meanings: dict) -> None:
    """Prints `config_table` for --print_config: every field, its default and its meaning.

    Args:
      config: the loaded config (with any --config.FIELD=VALUE overrides applied).
      source: where it came from (a config file and variant, or a work directory).
      meanings: {dotted field: meaning} (the mains pass `configs.field_meanings(config)`).
    """
    from l2l_tf import config as config_lib

    if config is None:
        raise UserError("--print_config needs --config=FILE[:VARIANT] (or --workdir=DIR)")
    count = len(config_lib.flatten(config))
    title = f"{source}: {count} fields (override: --config.FIELD=V)"
    try:
        print(config_table(config, meanings, title), flush=True)
    except BrokenPipeError:  # `| head`: the reader has gone, which is fine
        _stdout_to_devnull()


def _stdout_to_devnull() -> None:
    """After a broken pipe: Python's flush at exit must not fail again."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
