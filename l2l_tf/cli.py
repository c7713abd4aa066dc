"""Shared plumbing of the command-line mains: quiet start-up and one-line errors."""

import os
import sys
import traceback

from l2l_tf.errors import UserError


def quiet_tensorflow() -> None:
    """Silences TensorFlow's C++ start-up chatter (set before TensorFlow is imported)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


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
