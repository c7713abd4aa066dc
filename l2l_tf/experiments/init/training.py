"""Meta-training of initialization-based meta-learners (MAML, FOMAML, Reptile, Meta-SGD, iMAML).

`train(config, workdir)` is what `train_optimizer.py` runs when `config.meta.learner` names one of
these learners, through the one loop (`l2l_tf.run.loop`). Its compiled unit is a block:
`MetaTrainStep` runs a block of meta-iterations in one `tf.function` call (a `tf.range` loop),
each meta-iteration sampling a fresh meta-batch of tasks from its stateless seed, taking the
learner's outer gradient and applying the meta-optimizer. A block ends at every log, validation
and checkpoint boundary, so Python runs once per block, not once per meta-iteration.
"""

import math
from pathlib import Path

import tensorflow as tf

from l2l_tf import config as config_lib
from l2l_tf import evaluation, seeding
from l2l_tf.errors import lookup
from l2l_tf.experiments.init.validation import INIT_LEARNERS, validate
from l2l_tf.meta import META_LEARNERS, MetaOptimizer
from l2l_tf.meta.base import MetaLearner, sample_episode
from l2l_tf.optimizers import make_rule
from l2l_tf.optimizers.per_parameter import PerParameterSGD
from l2l_tf.optimizers.schedules import learning_rate_factor
from l2l_tf.problems import make_task_family
from l2l_tf.run import loop
from l2l_tf.run.workdir import WorkdirLock, prepare_workdir

#: Tasks evaluated in one compiled call (validation and evaluation split larger sets).
MAX_TASKS_PER_CALL = 1000


def build_family(config, batch_size: int, split: str = "train"):
    """The config's task family with `batch_size` tasks per sample (the meta-batch).

    `split` picks the classes of families that split a data set by class (few-shot
    classification): "train" for meta-training and the pretrained baseline, "val" for
    validation and learning-rate tuning, "test" for the final evaluation. Other families
    ignore it (their splits are the seed domains).
    """
    return make_task_family(config.problem, config.get("data"), split=split, batch_size=batch_size)


def tasks_per_call(config, num_tasks: int) -> int:
    """How many of `num_tasks` tasks one compiled validation or evaluation call runs.

    `eval.tasks_per_call` caps it where the config has it (a conv net's activations for many
    tasks at once are large), else `MAX_TASKS_PER_CALL`.
    """
    return min(num_tasks, config.eval.get("tasks_per_call", MAX_TASKS_PER_CALL))


def initial_meta_params(family, seed: int) -> list[tf.Tensor]:
    """theta_0: the family's own initialization of one member, from the INIT seed domain."""
    root = seeding.root_seed(seed, seeding.INIT)
    task_seed, init_seed = seeding.split(root)
    params = family.init_params(family.sample(task_seed), init_seed)
    return [p[0] for p in params]


def build_learner(config, family, learner: str | None = None, num_inner_steps=None) -> MetaLearner:
    """The meta-learner `config.meta.learner` (or `learner`) on `family`, at its initial values."""
    cfg = config.meta
    name = cfg.learner if learner is None else learner
    cls = lookup(META_LEARNERS, name, "meta-learner")
    init = initial_meta_params(family, config.seed)
    if name == "metasgd":
        shapes = [p.shape.as_list() for p in init]
        rule = PerParameterSGD(shapes, tuple(cfg.rate_init_range), config.seed, init[0].dtype)
    else:
        rule = make_rule({"name": cfg.inner_optimizer, "learning_rate": cfg.inner_learning_rate})
    kwargs = {"lam": cfg.lam, "cg_steps": cfg.cg_steps} if name == "imaml" else {}
    steps = cfg.num_inner_steps if num_inner_steps is None else num_inner_steps
    return cls(family, init, rule, steps, **kwargs)


class MetaTrainStep:
    """A compiled block of meta-iterations: `step(start, count, total)`.

    Meta-iteration i draws its meta-batch from `seeding.task_seed(seed, TRAIN, i)`, so a resumed
    run sees the same tasks as an uninterrupted one. `start`, `count` and `total` are tensors:
    one trace serves every block. Non-finite meta-losses or gradients are skipped and counted.
    """

    def __init__(
        self,
        learner: MetaLearner,
        meta_optimizer: MetaOptimizer,
        seed: int,
        clip_grad_norm: float = 0.0,
        lr_schedule: str = "constant",
        jit_compile: bool = False,
    ):
        self.learner = learner
        self.meta_optimizer = meta_optimizer
        self.seed = int(seed)
        self.clip_grad_norm = float(clip_grad_norm)
        self.lr_schedule = lr_schedule
        self.base_learning_rate = float(meta_optimizer.rule.learning_rate.numpy())
        self.trace_count = 0
        self._fn = tf.function(self._run, jit_compile=jit_compile)

    def __call__(self, start: int, count: int, total: int) -> dict:
        """Runs meta-iterations start .. start + count - 1 of a `total`-iteration run.

        Returns:
          {"loss_sum": sum of the finite meta-losses, "skipped": non-finite iterations,
           "grad_norm": the last meta-gradient's global norm}, as numbers.
        """
        out = self._fn(
            tf.constant(start, tf.int64), tf.constant(count, tf.int64), tf.constant(total, tf.int64)
        )
        return {k: v.numpy().item() for k, v in out.items()}

    def _run(self, start, count, total):
        self.trace_count += 1  # Python side effect: runs once per trace
        learner, lr = self.learner, self.meta_optimizer.rule.learning_rate
        loss_sum = tf.zeros([], tf.float64)
        skipped = tf.zeros([], tf.int64)
        grad_norm = tf.zeros([], tf.float64)
        for j in tf.range(count):
            i = start + j
            if self.lr_schedule == "linear":  # Reptile's annealing: epsilon_i = eps0 (1 - i/N)
                lr.assign(self.base_learning_rate * learning_rate_factor("linear", i, total))
            episode_seed = seeding.task_seed(self.seed, seeding.TRAIN, i)
            task, support, query, _ = sample_episode(learner.family, episode_seed)
            meta_loss, grads = learner.outer_grad(task, support, query)
            norm, finite = self.meta_optimizer.apply_if_finite(
                meta_loss, grads, self.clip_grad_norm
            )
            loss_sum += tf.where(finite, tf.cast(meta_loss, tf.float64), 0.0)
            skipped += tf.cast(tf.logical_not(finite), tf.int64)
            grad_norm = tf.cast(norm, tf.float64)
        return {"loss_sum": loss_sum, "skipped": skipped, "grad_norm": grad_norm}


def make_curve_fn(
    learner: MetaLearner, num_steps: int, random_init: bool = False, metric: bool = False
):
    """A compiled function: episode seed -> query losses [num_steps + 1, members].

    Row t is each task's query loss after t adaptation steps of the learner's inner rule on the
    support set, starting from the learned theta (or, with `random_init`, from the family's
    random initialization of each task). With `metric`, the family's metric (`member_metric`,
    e.g. query accuracy) instead of its loss. No meta-gradient is taken.
    """

    @tf.function
    def curve(episode_seed):
        family = learner.family
        task, support, query, init_seed = sample_episode(family, episode_seed)
        if random_init:
            params = family.init_params(task, init_seed)
        else:
            params = learner.initial_params()
        return learner.adaptation(
            task, support, params, num_steps, False, query=query, metric=metric
        )[1]

    return curve


def meta_train(step: MetaTrainStep, num_iterations: int, block: int) -> dict:
    """Runs `num_iterations` meta-iterations from 0 in blocks (no work directory): baselines."""
    done, loss_sum, skipped = 0, 0.0, 0
    while done < num_iterations:
        count = min(block, num_iterations - done)
        out = step(done, count, num_iterations)
        done += count
        loss_sum += out["loss_sum"]
        skipped += out["skipped"]
    return {"mean_loss": loss_sum / max(num_iterations - skipped, 1), "skipped": skipped}


def train(config, workdir, *, overwrite: bool = False, log=print) -> dict:
    """Meta-trains `config.meta.learner` in `workdir`, resuming if it was started before.

    Args:
      config: a resolved config (configs/*_sinusoid.py, configs/*_fewshot.py).
      workdir: where checkpoints, logs and the best meta-parameters go.
      overwrite: start over even if `workdir` holds a run with a different config.
      log: where progress lines go.

    Returns:
      The loop's summary (`l2l_tf.run.loop.train_loop`), with `best_val_query_loss_mean`.
    """
    validate(config)
    workdir = Path(workdir)
    cfg = config.meta
    family = build_family(config, cfg.meta_batch_size)
    if family.describe():
        log(family.describe())
    learner = build_learner(config, family)
    workdir.mkdir(parents=True, exist_ok=True)
    with WorkdirLock(workdir):
        prepare_workdir(config, workdir, overwrite)
        meta_rule = make_rule({"name": cfg.optimizer, "learning_rate": cfg.learning_rate})
        meta_optimizer = MetaOptimizer(meta_rule, learner.meta_params)
        step = MetaTrainStep(
            learner,
            meta_optimizer,
            config.seed,
            clip_grad_norm=cfg.clip_grad_norm,
            lr_schedule=cfg.lr_schedule,
            jit_compile=config_lib.added_field(config, "meta.jit_compile"),
        )
        trainer = _trainer(config, workdir, learner, meta_optimizer, step)
        return loop.train_loop(trainer, workdir, config.train, log=log)


def _trainer(config, workdir, learner, meta_optimizer, step) -> loop.Trainer:
    cfg, train_cfg = config.meta, config.train
    num_val = train_cfg.num_val_tasks
    val_learner = learner.with_family(
        build_family(config, tasks_per_call(config, num_val), split="val")
    )
    val_fn = make_curve_fn(val_learner, cfg.num_inner_steps)

    def score(i):
        val, _ = evaluation.validation_score(val_fn, val_learner.family, config.seed, num_val)
        return val

    def log_fields(outputs):
        count = sum(o["count"] - o["skipped"] for o in outputs)
        loss_sum = sum(o["loss_sum"] for o in outputs)
        return {
            "meta_loss": loss_sum / count if count else math.nan,
            "grad_norm": outputs[-1]["grad_norm"],
        }

    def run(start, count, total):
        return {**step(start, count, total), "count": count}

    validation = loop.Validation(
        key="val_query_loss_mean",
        score=score,
        module=learner,
        info=lambda i, val: {"iteration": i, "val_query_loss_mean": val, "num_val_tasks": num_val},
        describe=lambda val: f"validation query loss after {cfg.num_inner_steps} step(s) {val:.4g}",
    )
    return loop.Trainer(
        state={"learner": learner, "meta_optimizer": meta_optimizer},
        step=run,
        log_fields=log_fields,
        log_text=lambda r: f"meta-loss {r['meta_loss']:.4g}  |grad| {r['grad_norm']:.3g}",
        scalars=("meta_loss", "grad_norm"),
        block=cfg.iterations_per_call,
        validation=validation,
        describe=(
            f"meta-training {cfg.learner} for {train_cfg.num_meta_iterations} meta-iterations "
            f"(meta-batch {cfg.meta_batch_size}, {cfg.num_inner_steps} inner steps) in {workdir}"
        ),
        trace_count=lambda: step.trace_count,
    )


__all__ = [
    "INIT_LEARNERS",
    "MetaTrainStep",
    "build_family",
    "build_learner",
    "make_curve_fn",
    "meta_train",
    "tasks_per_call",
    "train",
    "validate",
]
