"""User-facing errors.

Anything the user can fix (a bad flag, a config field out of range, a missing work directory)
raises `UserError`; the command-line mains print its message on one line and exit non-zero
instead of showing a traceback.
"""


class UserError(Exception):
    """An error caused by the user's input, reported without a traceback."""


def check_decay(dotted: str, value) -> None:
    """Raises a `UserError` unless `value` is a number in [0, 1) (a moving average's decay)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise UserError(f"{dotted} must be a number in [0, 1), got {value!r}")


def lookup(registry: dict, name: str, what: str):
    """Returns `registry[name]`, or raises a `UserError` that lists the valid names.

    Args:
      registry: a plain dict from names to factories.
      name: the name to look up.
      what: what the registry holds, for the message (for example "task family").
    """
    try:
        return registry[name]
    except (KeyError, TypeError):
        valid = ", ".join(sorted(registry))
        raise UserError(f"unknown {what} {name!r}; valid names: {valid}") from None


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (its class name when the message is empty)."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
