"""Shared plumbing of the command-line mains: quiet start-up and one-line errors."""

import os
import sys
import traceback

from l2l_tf.errors import UserError


def quiet_tensorflow() -> None:
    """Imports TensorFlow without its C++ start-up chatter on stderr.

    TF_CPP_MIN_LOG_LEVEL silences most of it, but a few lines are written before TensorFlow's
    logging is initialized, so stderr is pointed at /dev/null for the import itself. An import
    error still propagates (and is printed once stderr is restored).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if os.environ.get("L2L_TF_VERBOSE_IMPORT"):
        return
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

    Anything else is a bug in l2l_tf and keeps its traceback.
    """
    try:
        fn()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except Exception:
        traceback.print_exc()
        sys.exit(1)


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


def _unknown_field_message(argv, text: str) -> str | None:
    """`unknown config field 'config.a.b'; did you mean 'c'?` from ConfigDict's KeyError text."""
    import re

    match = re.search(r'Did you mean "([^"]+)" instead of "([^"]+)"', text)
    if match is None:
        return None
    suggestion, key = match.groups()
    overrides = [a[2:].split("=", 1)[0] for a in argv if a.startswith("--config.")]
    bad = next((o for o in overrides if key in o.split(".")), key)
    return f"unknown config field {bad!r}; did you mean {suggestion!r}?"


def parse_flags(argv):
    """absl flags parser for the mains: a bad flag is one `error:` line and exit status 2."""
    import os as _os

    from absl import flags

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


def exit_with_flag_error(argv, exc: Exception):
    """Prints a one-line `error:` for an exception raised while parsing flags; exits 2."""
    text = str(exc).replace("\\n", "\n")
    msg = _unknown_field_message(argv, text)
    if msg is None and isinstance(exc, (KeyError, AttributeError)):
        msg = f"unknown config field {_last_line(text)}"
    if msg is None:
        msg = _last_line(text) if "Traceback" in text else (text.strip().splitlines() or [""])[0]
    print(f"error: {msg or type(exc).__name__}", file=sys.stderr)
    sys.exit(2)
