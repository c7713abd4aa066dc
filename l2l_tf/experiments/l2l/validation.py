"""The checks of a learned-optimizer config (`meta.learner = "l2l"`, the default)."""

from l2l_tf import config as config_lib
from l2l_tf.errors import UserError
from l2l_tf.meta.l2l import check_loss_transform
from l2l_tf.optimizers import BASELINES, SIGNAL_BASELINES, UPDATE_RULES
from l2l_tf.optimizers.schedules import check_lr_schedule
from l2l_tf.problems import TASK_FAMILIES
from l2l_tf.problems.signals import provides_signals

#: meta.estimator: truncated BPTT (meta/l2l.py), antithetic ES or PES (meta/es.py).
ESTIMATORS = ("tbptt", "es", "pes")


def validate(config) -> None:
    """Checks a learned-optimizer config; families and rules check their own in constructors.

    Raises:
      UserError: naming the first invalid field.
    """
    config_lib.check_seed_and_sections(config, ("problem", "rule", "meta", "train", "eval"))
    num_steps = config_lib.positive_int(config, "meta.num_steps")
    unroll = config_lib.positive_int(config, "meta.unroll_length")
    if num_steps % unroll:
        raise UserError(f"meta.unroll_length ({unroll}) must divide meta.num_steps ({num_steps})")
    for field in ("second_derivatives", "jit_compile", "static_unroll", "recompute"):
        value = config_lib.added_field(config, f"meta.{field}")
        if not isinstance(value, bool):
            raise UserError(f"meta.{field} must be True or False, got {value!r}")
    config_lib.positive(config, "meta.learning_rate")
    check_loss_transform(config_lib.added_field(config, "meta.loss_transform"))
    check_lr_schedule(
        config_lib.added_field(config, "meta.lr_schedule"),
        config_lib.added_field(config, "meta.final_lr_fraction"),
    )
    config_lib.positive(config, "meta.clip_grad_norm", allow_zero=True)
    estimator = config_lib.added_field(config, "meta.estimator")
    if estimator not in ESTIMATORS:
        raise UserError(f"meta.estimator must be one of {list(ESTIMATORS)}, got {estimator!r}")
    if estimator != "tbptt":
        if config_lib.added_field(config, "distribute") != "none":
            raise UserError(f"distribute works with meta.estimator='tbptt' only, not {estimator!r}")

    if config.meta.optimizer not in UPDATE_RULES or UPDATE_RULES[config.meta.optimizer].learned:
        raise UserError(
            f"meta.optimizer must be one of {list(BASELINES)}, got {config.meta.optimizer!r}"
        )
    config_lib.validate_train_section(config)
    last = config_lib.added_field(config, "train.val_last_steps")
    if isinstance(last, bool) or not isinstance(last, int) or not 1 <= last <= num_steps + 1:
        raise UserError(
            f"train.val_last_steps must be an integer in [1, meta.num_steps + 1], got {last!r}"
        )
    for field in ("num_tasks", "num_steps", "num_tuning_tasks"):
        config_lib.positive_int(config, f"eval.{field}")
    config_lib.validate_lr_grid(config)
    valid = BASELINES + SIGNAL_BASELINES
    unknown = [b for b in config.eval.baselines if b not in valid]
    if unknown:
        raise UserError(f"eval.baselines: unknown {unknown}; valid: {list(valid)}")
    check_signals(config)


def check_signals(config) -> None:
    """Rules that need local signals (synaptic rules) only run on families that provide them."""
    family = TASK_FAMILIES.get(config.problem.get("name"))
    if family is None or provides_signals(family):
        return  # an unknown family is reported by make_task_family
    rules = [("rule", config.rule.get("name"))]
    rules += [("eval.baselines", b) for b in config.eval.baselines]
    for field, name in rules:
        if getattr(UPDATE_RULES.get(name), "needs_signals", False):
            raise UserError(
                f"{field}: {name!r} needs local signals, which problem {family.name!r} does "
                "not provide"
            )
