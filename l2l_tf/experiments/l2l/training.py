"""Meta-training a learned update rule (Andrychowicz et al., 2016) through the one loop.

`train(config, workdir)` is what `train_optimizer.py` runs for `meta.learner = "l2l"`. Only the
unroll is compiled (`TruncatedBPTT.meta_step`); one meta-iteration is one truncated unroll, and
`num_steps // unroll_length` of them make an episode of one sampled task. The parameters and
rule state of the episode in progress are checkpointed (`EpisodeState`), so a resumed run
continues the interrupted episode exactly.
"""

import math

import numpy as np
import tensorflow as tf

from l2l_tf import config as config_lib
from l2l_tf import evaluation, seeding
from l2l_tf.errors import UserError
from l2l_tf.experiments.l2l.validation import validate
from l2l_tf.meta import MetaOptimizer, TruncatedBPTT, distributed
from l2l_tf.optimizers import make_rule
from l2l_tf.optimizers.schedules import learning_rate_factor
from l2l_tf.problems import make_task_family
from l2l_tf.problems.distribution import FixedTasks, TaskDistribution
from l2l_tf.run import loop
from l2l_tf.run.workdir import WorkdirLock, prepare_workdir
from l2l_tf.unroll import make_trajectory_fn


class EpisodeState(tf.Module):
    """Variables holding the estimator's carry of the episode in progress (for truncated BPTT
    the params and rule state).

    They are written only when a checkpoint is saved, so that a resumed run continues the
    interrupted episode exactly instead of starting a new one.
    """

    def __init__(self, params, rule_state):
        super().__init__(name="episode")
        self.params = [tf.Variable(p, trainable=False) for p in tf.nest.flatten(params)]
        self.rule_state = [tf.Variable(t, trainable=False) for t in tf.nest.flatten(rule_state)]

    def store(self, carry) -> None:
        for v, t in zip(self.params + self.rule_state, tf.nest.flatten(carry)):
            v.assign(t)

    def load(self, like):
        """The stored carry, in the structure of `like`."""
        values = [v.read_value() for v in self.params + self.rule_state]
        return tf.nest.pack_sequence_as(like, values)


class PackedEpisodeState(tf.Module):
    """The carry of the episode in progress as one vector, for runs whose episodes differ in
    shape (a `TaskDistribution`): the structure comes back from the episode's own start."""

    def __init__(self, carry):
        super().__init__(name="episode")
        self.vector = tf.Variable(self._pack(carry), trainable=False, shape=tf.TensorShape([None]))

    @staticmethod
    def _pack(carry):
        return tf.concat(
            [tf.reshape(tf.cast(t, tf.float32), [-1]) for t in tf.nest.flatten(carry)], 0
        )

    def store(self, carry) -> None:
        self.vector.assign(self._pack(carry))

    def load(self, like):
        leaves = tf.nest.flatten(like)
        sizes = [int(t.shape.num_elements()) for t in leaves]
        if sum(sizes) != int(tf.size(self.vector)):
            raise UserError("the checkpointed episode does not match the run's task sequence")
        parts = tf.split(self.vector.read_value(), sizes)
        values = [tf.cast(tf.reshape(p, t.shape), t.dtype) for p, t in zip(parts, leaves)]
        return tf.nest.pack_sequence_as(like, values)


def build_learned_rule(config):
    """The learned update rule described by `config.rule` (variables initialized from the seed)."""
    return make_rule(config.rule, seed=config.seed)


def train(config, workdir, *, overwrite: bool = False, log=print) -> dict:
    """Meta-trains the learned rule of `config` in `workdir`, resuming if it was started before.

    Args:
      config: a resolved config (see configs/).
      workdir: where checkpoints, logs and the best meta-parameters go.
      overwrite: start over even if `workdir` holds a run with a different config.
      log: where progress lines go.

    Returns:
      The loop's summary (`l2l_tf.run.loop.train_loop`), with `best_val_final_loss_mean`.
    """
    validate(config)
    # First: a multi-worker strategy must exist before TensorFlow runs any operation.
    strategy = distributed.make_strategy(config.get("distribute", "none"))
    workdir = distributed.worker_workdir(strategy, workdir)
    tasks = build_tasks(config, log)
    for _, family, _ in tasks.validation_tasks():
        distributed.check_shardable(family, strategy)
    with distributed.scope(strategy):  # the meta-parameters are mirrored on every replica
        rule = build_learned_rule(config)
    meta_cfg = config.meta
    workdir.mkdir(parents=True, exist_ok=True)
    with WorkdirLock(workdir):
        prepare_workdir(config, workdir, overwrite)
        meta_rule = make_rule({"name": meta_cfg.optimizer, "learning_rate": meta_cfg.learning_rate})
        with distributed.scope(strategy):
            meta_optimizer = MetaOptimizer(meta_rule, rule.trainable_variables)

        def make_learner(family):
            learner = make_estimator(config, family, rule, meta_optimizer)
            if strategy is not None:
                learner = distributed.DistributedTBPTT(strategy, learner)
            return learner

        episodes = Episodes(config, tasks, rule, meta_optimizer, make_learner)
        return loop.train_loop(episodes.trainer(workdir), workdir, config.train, log=log)


def build_tasks(config, log=print):
    """The meta-training tasks of `config`: a `TaskDistribution` for problem.name =
    "distribution", else the one family of `config.problem` with horizon meta.num_steps."""
    if config.problem.get("name") == "distribution":
        fields = {k: v for k, v in config.problem.items() if k != "name"}
        try:
            return TaskDistribution(**fields, log=log)
        except TypeError as e:
            raise UserError(f"problem 'distribution': {e}") from None
    family = make_task_family(config.problem, config.get("data"))
    if family.describe():
        log(family.describe())
    return FixedTasks(family, config.meta.num_steps)


def make_estimator(config, family, rule, meta_optimizer):
    """The meta-gradient estimator `meta.estimator` ("tbptt", "es" or "pes") for `family`."""
    meta_cfg = config.meta
    estimator = config_lib.added_field(config, "meta.estimator")
    common = dict(
        clip_grad_norm=meta_cfg.clip_grad_norm or None,
        jit_compile=meta_cfg.jit_compile,
        loss_transform=meta_cfg.loss_transform,
    )
    if estimator == "tbptt":
        return TruncatedBPTT(
            family,
            rule,
            meta_optimizer,
            meta_cfg.unroll_length,
            second_derivatives=meta_cfg.second_derivatives,
            static_unroll=meta_cfg.static_unroll,
            recompute=meta_cfg.recompute,
            **common,
        )
    from l2l_tf.meta import es  # only runs that use them import the ES estimators

    cls = {"es": es.AntitheticES, "pes": es.PES}[estimator]
    return cls(
        family,
        rule,
        meta_optimizer,
        meta_cfg.unroll_length,
        num_pairs=config_lib.added_field(config, "meta.num_pairs"),
        sigma=config_lib.added_field(config, "meta.sigma"),
        **common,
    )


def validation_scores(tasks, rule, seed, num_tasks: int, last_steps: int):
    """A function returning `rule`'s validation score on each of `tasks`' validation specs.

    Each score is `evaluation.validation_score` of one spec: the mean loss over the last
    `last_steps` steps (at most the spec's steps + 1) of `num_tasks` validation tasks. The
    trajectory functions are traced once, here, and read the rule's current variables.
    """
    specs = [
        (family, make_trajectory_fn(family, rule, steps), min(last_steps, steps + 1))
        for _, family, steps in tasks.validation_tasks()
    ]
    return lambda: [
        evaluation.validation_score(fn, family, seed, num_tasks, k)[0] for family, fn, k in specs
    ]


class Episodes:
    """The meta-iterations of a learned-rule run: truncated unrolls of episodes of sampled tasks.

    Episode e has a family and a horizon from `tasks.episode` (always the same ones for a fixed
    family; sampled per episode for a `TaskDistribution`), and its task, initial parameters
    and minibatches come from the episode's stateless seed. Its meta-iterations are its
    horizon // unroll_length truncations, in order; each family gets its own estimator
    (`make_learner`), all sharing the rule and the meta-optimizer.
    """

    def __init__(self, config, tasks, rule, meta_optimizer, make_learner):
        self.config, self.tasks, self.rule = config, tasks, rule
        self.meta_optimizer, self.make_learner = meta_optimizer, make_learner
        self.unroll_length = config.meta.unroll_length
        self.learners = {}
        self.starts = [0]  # first meta-iteration of each episode (extended on demand)
        self.fixed = isinstance(tasks, FixedTasks)
        self._begin(0)
        self.episode_state = (
            EpisodeState(*self.carry) if self.fixed else PackedEpisodeState(self.carry)
        )

    def learner(self, family):
        key = id(family)
        if key not in self.learners:
            self.learners[key] = self.make_learner(family)
        return self.learners[key]

    def horizon(self, episode: int) -> tuple:
        return self.tasks.episode(self.config.seed, episode, self.unroll_length)

    def locate(self, iteration: int) -> tuple[int, int]:
        """(episode, truncation within it) of meta-iteration `iteration`."""
        while self.starts[-1] <= iteration:
            _, steps = self.horizon(len(self.starts) - 1)
            self.starts.append(self.starts[-1] + steps // self.unroll_length)
        episode = int(np.searchsorted(self.starts, iteration, side="right")) - 1
        return episode, iteration - self.starts[episode]

    def _begin(self, episode: int) -> None:
        """Starts episode `episode`: its family, task, seeds, theta_0 and estimator carry."""
        self.family, self.num_steps = self.horizon(episode)
        self.task, self.init_seed, self.batch_seed, params, state = _start_episode(
            self.family, self.rule, self.config.seed, episode
        )
        self.carry = self.learner(self.family).start(params, state)

    def trainer(self, workdir) -> loop.Trainer:
        train_cfg = self.config.train
        validation = loop.Validation(
            key="val_final_loss_mean",
            score=self.validation_score(),
            module=self.rule,
            info=lambda i, val: {
                "iteration": i,
                "val_final_loss_mean": val,
                "num_val_tasks": train_cfg.num_val_tasks,
                "val_last_steps": train_cfg.val_last_steps,
            },
            describe=lambda val: f"validation final loss {val:.4g}",
        )
        if self.fixed:
            episodes = f"{self.num_steps // self.unroll_length} unrolls of {self.unroll_length}"
        else:
            episodes = f"sampled horizons, unrolls of {self.unroll_length}"
        return loop.Trainer(
            state={
                "rule": self.rule,
                "meta_optimizer": self.meta_optimizer,
                "episode": self.episode_state,
            },
            step=self.step,
            log_fields=self.log_fields,
            log_text=lambda r: (
                f"meta-loss {r['meta_loss']:.4g} (mean loss per step {r['mean_loss']:.4g})  "
                f"|grad| {r['grad_norm']:.3g}"
            ),
            scalars=("meta_loss", "mean_loss", "grad_norm"),
            validation=validation,
            after_restore=self.after_restore,
            before_save=lambda: self.episode_state.store(self.carry),
            describe=(
                f"meta-training {train_cfg.num_meta_iterations} meta-iterations "
                f"({episodes} steps per episode) in {workdir}"
            ),
            trace_count=lambda: sum(learner.trace_count for learner in self.learners.values()),
        )

    def validation_score(self):
        """score(iteration): the fixed family's validation score, or for a distribution the
        mean over its validation specs of the log of each one's score (scale-free)."""
        train_cfg = self.config.train
        per_spec = validation_scores(
            self.tasks, self.rule, self.config.seed, train_cfg.num_val_tasks,
            train_cfg.val_last_steps,
        )

        def score(i):
            del i
            values = per_spec()
            if self.fixed:
                return values[0]
            return float(np.mean(np.log(values)))

        return score

    def after_restore(self, iteration: int) -> None:
        """Continues the checkpointed episode: its task and seeds, and its saved carry."""
        episode, _ = self.locate(iteration)
        self._begin(episode)
        self.carry = self.episode_state.load(self.carry)

    def step(self, start: int, count: int, total: int) -> dict:
        """Meta-iteration `start` (the loop's blocks are one unroll long: `count` is 1)."""
        del count
        meta_cfg = self.config.meta
        episode, unroll = self.locate(start)
        if unroll == 0:
            self._begin(episode)
        step0 = tf.constant(unroll * self.unroll_length, tf.int32)
        self.meta_optimizer.rule.learning_rate.assign(
            meta_cfg.learning_rate
            * learning_rate_factor(meta_cfg.lr_schedule, start, total, meta_cfg.final_lr_fraction)
        )
        learner = self.learner(self.family)
        self.carry, m = learner.advance(self.carry, self.task, self.batch_seed, step0)
        skipped = bool(m["skipped"])
        if skipped:
            # The optimizee is no longer finite: restart this episode's task from theta_0.
            params = self.family.init_params(self.task, self.init_seed)
            self.carry = learner.start(params, self.rule.init(params))
        return {
            "skipped": int(skipped),
            "mean_loss": float(m["mean_loss"]),
            "grad_norm": float(m["grad_norm"]),
        }

    def log_fields(self, outputs: list) -> dict:
        losses = [o["mean_loss"] for o in outputs if not o["skipped"]]
        mean_loss = float(np.mean(losses)) if losses else math.nan
        return {
            # The meta-loss of an unroll is the sum of its steps' mean (transformed) losses:
            # log-losses with meta.loss_transform = "log".
            "meta_loss": mean_loss * self.unroll_length,
            "mean_loss": mean_loss,
            "grad_norm": outputs[-1]["grad_norm"],
        }


def _start_episode(family, rule, seed, episode):
    task_seed, init_seed, batch_seed = seeding.episode_seeds(
        seeding.task_seed(seed, seeding.TRAIN, episode)
    )
    task = family.sample(task_seed)
    params = family.init_params(task, init_seed)
    return task, init_seed, batch_seed, params, rule.init(params)
