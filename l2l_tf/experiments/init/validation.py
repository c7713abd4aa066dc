"""The checks of an initialization-learner config (MAML, FOMAML, Reptile, Meta-SGD, iMAML)."""

from l2l_tf import config as config_lib
from l2l_tf.errors import UserError
from l2l_tf.optimizers import BASELINES
from l2l_tf.optimizers.schedules import check_lr_schedule

#: The learners of this experiment (config.meta.learner).
INIT_LEARNERS = ("maml", "fomaml", "metasgd", "reptile", "imaml")


def validate(config) -> None:
    """Checks the fields of an initialization-learner config.

    Raises:
      UserError: naming the first invalid field.
    """
    pos_int, pos = config_lib.positive_int, config_lib.positive
    config_lib.check_seed_and_sections(config, ("problem", "meta", "train", "eval"))
    learner = config.meta.get("learner")
    if learner not in INIT_LEARNERS:
        raise UserError(f"meta.learner must be one of {['l2l', *INIT_LEARNERS]}, got {learner!r}")
    for field in ("meta_batch_size", "num_inner_steps", "iterations_per_call"):
        pos_int(config, f"meta.{field}")
    pos(config, "meta.learning_rate")
    pos(config, "meta.clip_grad_norm", allow_zero=True)
    for field in ("optimizer", "inner_optimizer"):
        if config_lib.field(config, f"meta.{field}") not in BASELINES:
            raise UserError(
                f"meta.{field} must be one of {list(BASELINES)}, got {config.meta[field]!r}"
            )
    pos(config, "meta.inner_learning_rate")
    check_lr_schedule(config_lib.field(config, "meta.lr_schedule"), allowed=("constant", "linear"))
    if learner == "imaml":
        pos(config, "meta.lam")
        pos_int(config, "meta.cg_steps")
        rate = config.meta.inner_learning_rate * config.meta.lam
        if config.meta.inner_optimizer == "sgd" and rate >= 2:
            # The proximal term alone has curvature lambda: SGD on it multiplies phi - theta by
            # (1 - lr * lambda) per step, which grows when lr * lambda > 2 (every evaluation
            # task diverged within 6 steps with lambda = 1000, lr = 0.01).
            raise UserError(
                f"meta.inner_learning_rate * meta.lam = {rate:g} must be below 2, or SGD on "
                "iMAML's proximal inner objective diverges (lr * lambda = 1 is the usual choice)"
            )
    if learner == "metasgd":
        rng = config_lib.field(config, "meta.rate_init_range")
        if len(rng) != 2 or not 0 < rng[0] <= rng[1]:
            raise UserError(f"meta.rate_init_range must be (low, high), 0 < low <= high: {rng}")
    config_lib.validate_train_section(config)
    for field in ("num_tasks", "num_steps", "num_tuning_tasks", "pretrain_iterations"):
        pos_int(config, f"eval.{field}")
    if "tasks_per_call" in config.eval:
        pos_int(config, "eval.tasks_per_call")
    config_lib.validate_lr_grid(config)

    unknown = [b for b in config.eval.baselines if b not in ("pretrained", "scratch")]
    if unknown:
        raise UserError(f"eval.baselines: unknown {unknown}; valid: ['pretrained', 'scratch']")
