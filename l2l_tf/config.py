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
)


def _get(config, dotted):
    node = config
    for part in dotted.split("."):
        if part not in node:
            raise UserError(f"config has no field {dotted!r}")
        node = node[part]
    return node


def _positive_int(config, dotted):
    value = _get(config, dotted)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"{dotted} must be a positive integer, got {value!r}")
    return value


def _positive(config, dotted, allow_zero=False):
    value = _get(config, dotted)
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


def validate(config: ml_collections.ConfigDict) -> None:
    """Validates a config with the checks of its runner (see `l2l_tf.runners`).

    Raises:
      UserError: naming the first invalid field.
    """
    from l2l_tf.runners import runner_for

    runner_for(config).validate(config)


def validate_l2l(config: ml_collections.ConfigDict) -> None:
    """Checks a learned-optimizer config; families and rules check their own in constructors.

    Raises:
      UserError: naming the first invalid field.
    """
    from l2l_tf.optimizers import BASELINES, UPDATE_RULES

    if not isinstance(config.get("seed"), int) or isinstance(config.get("seed"), bool):
        raise UserError(f"seed must be an integer, got {config.get('seed')!r}")
    for section in ("problem", "rule", "meta", "train", "eval"):
        if section not in config:
            raise UserError(f"config has no section {section!r}")
    num_steps = _positive_int(config, "meta.num_steps")
    unroll = _positive_int(config, "meta.unroll_length")
    if num_steps % unroll:
        raise UserError(f"meta.unroll_length ({unroll}) must divide meta.num_steps ({num_steps})")
    for field in ("second_derivatives", "jit_compile", "static_unroll", "recompute"):
        value = config.meta.get(field, False)
        if not isinstance(value, bool):
            raise UserError(f"meta.{field} must be True or False, got {value!r}")
    _positive(config, "meta.learning_rate")
    from l2l_tf.meta.l2l import check_loss_transform
    from l2l_tf.meta.optimizer import check_lr_schedule

    check_loss_transform(config.meta.get("loss_transform", "none"))
    check_lr_schedule(
        config.meta.get("lr_schedule", "constant"), config.meta.get("final_lr_fraction", 1.0)
    )
    _positive(config, "meta.clip_grad_norm", allow_zero=True)

    if config.meta.optimizer not in UPDATE_RULES or UPDATE_RULES[config.meta.optimizer].learned:
        raise UserError(
            f"meta.optimizer must be one of {list(BASELINES)}, got {config.meta.optimizer!r}"
        )
    validate_train_section(config)
    last = config.train.get("val_last_steps", 1)
    if isinstance(last, bool) or not isinstance(last, int) or not 1 <= last <= num_steps + 1:
        raise UserError(
            f"train.val_last_steps must be an integer in [1, meta.num_steps + 1], got {last!r}"
        )
    for field in ("num_tasks", "num_steps", "num_tuning_tasks"):
        _positive_int(config, f"eval.{field}")
    validate_lr_grid(config)
    unknown = [b for b in config.eval.baselines if b not in BASELINES]
    if unknown:
        raise UserError(f"eval.baselines: unknown {unknown}; valid: {list(BASELINES)}")


def validate_train_section(config) -> None:
    """The `train.` fields every checkpointing, validating training loop has: positive ints."""
    for field in (
        "num_meta_iterations",
        "log_every",
        "checkpoint_every",
        "eval_every",
        "num_val_tasks",
        "keep_checkpoints",
        "max_consecutive_skips",
    ):
        _positive_int(config, f"train.{field}")


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
    """Inverse of `to_json` (JSON lists come back as the tuples they were)."""
    return ml_collections.ConfigDict(_tuples(json.loads(text)))


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
}


def added_field(config, dotted: str):
    """`config`'s value of the ADDED_FIELDS field `dotted`, or its older computation's value
    when the config (e.g. a work directory saved before the field existed) lacks it."""
    section, field = dotted.split(".")
    return config[section].get(field, ADDED_FIELDS[dotted])


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
