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
    msg = None
    if "Did you mean" in text or isinstance(exc, (KeyError, AttributeError)):
        msg = _unknown_field_message(argv, text)
    if msg is None:
        msg = _last_line(text) if "Traceback" in text else (text.strip().splitlines() or [""])[0]
    print(f"error: {msg or type(exc).__name__}", file=sys.stderr)
    sys.exit(2)


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
