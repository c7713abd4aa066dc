"""Config validation, saving and loading.

Configs are `ml_collections.ConfigDict`s returned by `configs/NAME.py:get_config()`. The mains
resolve them (file plus `--config.FIELD=VALUE` overrides), `validate` them, and write the result
to `WORKDIR/config.json`, from which `evaluate.py --workdir=DIR` rebuilds everything.
"""

import json
import math
from pathlib import Path

import ml_collections

from l2l_tf.errors import UserError

#: Fields that may change when an existing work directory is resumed: they change how long or
#: how verbosely a run goes, not what it computes.
SAFE_TO_CHANGE = (
    "train.num_meta_iterations",
    "train.log_every",
    "train.checkpoint_every",
    "train.eval_every",
    "train.keep_checkpoints",
    "eval.",
    "distribute",  # same trajectory on any number of replicas (see meta/distributed.py)
    "threads.",  # thread pools change speed, not the computation
    # The same arithmetic per coordinate, on parallel chains of ops; only the rounding of the
    # meta-gradient's sums over coordinates differs (optimizers/lstm.py).
    "rule.parallel_chunks",
    "meta.static_unroll",  # the same meta-gradient as the while loop (tests/test_meta.py)
)


def field(config, dotted):
    """The value of config field `dotted` ("meta.learning_rate"); UserError if it is absent."""
    node = config
    for part in dotted.split("."):
        if part not in node:
            raise UserError(f"config has no field {dotted!r}")
        node = node[part]
    return node


def positive_int(config, dotted):
    """Field `dotted`, checked to be a positive integer."""
    value = field(config, dotted)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"{dotted} must be a positive integer, got {value!r}")
    return value


def positive(config, dotted, allow_zero=False):
    """Field `dotted`, checked to be a finite positive (or, with allow_zero, >= 0) number."""
    value = field(config, dotted)
    ok = (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (value >= 0 if allow_zero else value > 0)
    )
    if not ok:
        kind = "finite non-negative" if allow_zero else "finite positive"
        raise UserError(f"{dotted} must be a {kind} number, got {value!r}")
    return value


def check_seed_and_sections(config, sections) -> None:
    """The start of every experiment's validator: an integer seed and the named sections."""
    seed = config.get("seed")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise UserError(f"seed must be an integer, got {seed!r}")
    for section in sections:
        if section not in config:
            raise UserError(f"config has no section {section!r}")


def validate_train_section(config) -> None:
    """The `train.` fields every checkpointing, validating training loop has: positive ints."""
    for name in (
        "num_meta_iterations",
        "log_every",
        "checkpoint_every",
        "eval_every",
        "num_val_tasks",
        "keep_checkpoints",
        "max_consecutive_skips",
    ):
        positive_int(config, f"train.{name}")


def validate_lr_grid(config) -> None:
    """`eval.lr_grid`, the learning rates tuned for baselines: non-empty, all positive."""
    grid = config.eval.lr_grid
    if not grid or any(
        isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0 for v in grid
    ):
        raise UserError(f"eval.lr_grid must be a non-empty tuple of positive numbers, got {grid!r}")


def to_json(config: ml_collections.ConfigDict) -> str:

    return json.dumps(config.to_dict(), indent=2, sort_keys=True) + "\n"


def _tuples(obj):
    if isinstance(obj, dict):
        return {k: _tuples(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return tuple(_tuples(v) for v in obj)
    return obj


def from_json(text: str) -> ml_collections.ConfigDict:
    """Inverse of `to_json` (JSON lists come back as the tuples they were).

    Raises:
      ValueError: if `text` is not JSON or not a JSON object (a damaged config.json).
    """
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"a JSON object was expected, not {type(data).__name__}")
    return ml_collections.ConfigDict(_tuples(data))


def load_workdir_config(workdir) -> ml_collections.ConfigDict:
    """The resolved config saved in a work directory."""
    path = Path(workdir) / "config.json"
    if not Path(workdir).is_dir():
        raise UserError(f"work directory {str(workdir)!r} does not exist")
    if not path.is_file():
        raise UserError(f"{path} not found: {workdir!r} is not an l2l_tf work directory")
    try:
        return from_json(path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise UserError(f"{path} is not a valid config: {e}") from None


def flatten(config) -> dict:
    """{'a.b': value} for every leaf of a (nested) config."""
    out = {}
    for key, value in config.items():
        if isinstance(value, (dict, ml_collections.ConfigDict)):
            out.update({f"{key}.{k}": v for k, v in flatten(value).items()})
        else:
            out[key] = value
    return out


#: Fields added after work directories were first written, with the value that reproduces the
#: older computation (the value the code assumes when a config lacks the field): where one config
#: has the field and the other does not, the other reads as having this value.
ADDED_FIELDS = {
    "distribute": "none",
    "meta.static_unroll": False,
    "meta.recompute": False,
    "meta.loss_transform": "none",
    "meta.lr_schedule": "constant",
    "meta.final_lr_fraction": 1.0,
    "meta.jit_compile": False,
    "meta.second_derivatives": False,
    "meta.objective": "policy_gradient",
    "train.val_last_steps": 1,
    "eval.fixed_grid": True,
    "rule.beta1": 0.95,
    "rule.beta2": 0.95,
    "rule.normalize": "none",
    "rule.rms_output_scale": 0.0,
    "rule.rms_input": False,
    "agent.embedding_input": "eta",
    "meta.beta1": 0.9,
    "meta.beta2": 0.999,
    "meta.advantage_normalization": "none",
    "meta.condition_on": "reference",
    "meta.estimator": "tbptt",
    "meta.num_pairs": 4,
    "meta.sigma": 0.01,
    "rule.max_direction": 0.0,
}


def added_field(config, dotted: str):
    """`config`'s value of the ADDED_FIELDS field `dotted`, or its older computation's value
    when the config (e.g. a work directory saved before the field existed) lacks it."""
    if "." not in dotted:
        return config.get(dotted, ADDED_FIELDS[dotted])
    section, name = dotted.split(".")
    return config[section].get(name, ADDED_FIELDS[dotted])


def changed_fields(old, new) -> list[str]:
    """Fields whose values differ between two configs, ignoring those in SAFE_TO_CHANGE."""
    a, b = flatten(old), flatten(new)
    for field, value in ADDED_FIELDS.items():
        if (field in a) != (field in b):
            (b if field in a else a)[field] = value
    changed = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return [
        k
        for k in changed
        if not any(k == s or (s.endswith(".") and k.startswith(s)) for s in SAFE_TO_CHANGE)
    ]
