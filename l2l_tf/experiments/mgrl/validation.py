"""The checks of a meta-gradient RL config (`meta.learner = "mgrl"`; environments check theirs)."""

from l2l_tf import config as config_lib
from l2l_tf.errors import UserError, check_decay
from l2l_tf.meta.mgrl import ETA_NAMES, check_meta_objective
from l2l_tf.optimizers import BASELINES, UPDATE_RULES
from l2l_tf.rl.a2c import check_embedding_input


def _probability(config, dotted, closed_top=False):
    value = config_lib.field(config, dotted)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not (0 < value < 1 or (closed_top and value == 1)):
        interval = "(0, 1]" if closed_top else "(0, 1)"
        raise UserError(f"{dotted} must be a number in {interval}, got {value!r}")
    return value


def _rule_name(config, dotted):
    name = config_lib.field(config, dotted)
    if name not in UPDATE_RULES or UPDATE_RULES[name].learned:
        raise UserError(f"{dotted} must be one of {list(BASELINES)}, got {name!r}")


def validate(config) -> None:
    """Checks the fields of an MGRL config (the environment checks its own when built).

    Raises:
      UserError: naming the first invalid field.
    """
    config_lib.check_seed_and_sections(config, ("env", "agent", "meta", "train", "eval"))
    config_lib.positive_int(config, "env.num_envs")
    config_lib.positive_int(config, "agent.rollout_length")
    _rule_name(config, "agent.optimizer")
    config_lib.positive(config, "agent.learning_rate")
    for field in ("value_coef", "entropy_coef", "clip_grad_norm"):
        config_lib.positive(config, f"agent.{field}", allow_zero=True)
    learn = tuple(config_lib.field(config, "meta.learn"))
    unknown = [n for n in learn if n not in ETA_NAMES]
    if unknown or len(set(learn)) != len(learn):
        raise UserError(f"meta.learn must be a subset of {list(ETA_NAMES)}, got {learn!r}")
    check_embedding_input(config_lib.added_field(config, "agent.embedding_input"))
    _probability(config, "meta.init_gamma")
    _probability(config, "meta.init_lambda")
    _probability(config, "meta.reference_gamma")
    _probability(config, "meta.reference_lambda", closed_top=True)
    _rule_name(config, "meta.optimizer")
    config_lib.positive(config, "meta.learning_rate")
    config_lib.positive(config, "meta.clip_grad_norm", allow_zero=True)
    check_meta_objective(
        config_lib.added_field(config, "meta.objective"),
        config_lib.added_field(config, "meta.advantage_normalization"),
        config_lib.added_field(config, "meta.condition_on"),
    )
    if config.meta.optimizer == "adam":
        for field in ("meta.beta1", "meta.beta2"):
            check_decay(field, config_lib.added_field(config, field))
    decay = config_lib.positive(config, "meta.trace_decay", allow_zero=True)
    if decay >= 1:
        raise UserError(f"meta.trace_decay must be in [0, 1), got {decay!r}")
    for field in ("num_meta_iterations", "log_every", "checkpoint_every", "keep_checkpoints"):
        config_lib.positive_int(config, f"train.{field}")
    config_lib.positive_int(config, "eval.num_seeds")
    config_lib.positive_int(config, "eval.num_meta_iterations")
    config_lib.positive_int(config, "eval.log_every")
    config_lib.positive(config, "eval.final_fraction")
    if not isinstance(config_lib.added_field(config, "eval.fixed_grid"), bool):
        raise UserError(f"eval.fixed_grid must be True or False, got {config.eval.fixed_grid!r}")
    if config.eval.final_fraction > 1:
        raise UserError(f"eval.final_fraction must be in (0, 1], got {config.eval.final_fraction}")
    for field in ("gammas", "lambdas"):
        values = tuple(config_lib.field(config, f"eval.{field}"))
        if not values or any(
            isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 1 for v in values
        ):
            raise UserError(f"eval.{field} must be a non-empty tuple of numbers in (0, 1]")
    if 1.0 in tuple(config.eval.gammas):
        raise UserError("eval.gammas: gamma must be below 1 (its logit is infinite)")
