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

from l2l_tf import evaluation, seeding
from l2l_tf.experiments.l2l.validation import validate
from l2l_tf.meta import MetaOptimizer, TruncatedBPTT, distributed
from l2l_tf.optimizers import make_rule
from l2l_tf.optimizers.schedules import learning_rate_factor
from l2l_tf.problems import make_task_family
from l2l_tf.run import loop
from l2l_tf.run.workdir import WorkdirLock, prepare_workdir
from l2l_tf.unroll import make_trajectory_fn


class EpisodeState(tf.Module):
    """Variables holding the params and rule state of the episode in progress.

    They are written only when a checkpoint is saved, so that a resumed run continues the
    interrupted episode exactly instead of starting a new one.
    """

    def __init__(self, params, rule_state):
        super().__init__(name="episode")
        self.params = [tf.Variable(p, trainable=False) for p in params]
        self._structure = rule_state
        self.rule_state = [tf.Variable(t, trainable=False) for t in tf.nest.flatten(rule_state)]

    def store(self, params, rule_state) -> None:
        for v, t in zip(self.params, params):
            v.assign(t)
        for v, t in zip(self.rule_state, tf.nest.flatten(rule_state)):
            v.assign(t)

    def load(self):
        params = [v.read_value() for v in self.params]
        state = tf.nest.pack_sequence_as(self._structure, [v.read_value() for v in self.rule_state])
        return params, state


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
    family = make_task_family(config.problem, config.get("data"))
    if family.describe():
        log(family.describe())
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
        learner = TruncatedBPTT(
            family,
            rule,
            meta_optimizer,
            meta_cfg.unroll_length,
            second_derivatives=meta_cfg.second_derivatives,
            clip_grad_norm=meta_cfg.clip_grad_norm or None,
            jit_compile=meta_cfg.jit_compile,
            static_unroll=meta_cfg.static_unroll,
            recompute=meta_cfg.recompute,
            loss_transform=meta_cfg.loss_transform,
        )
        if strategy is not None:
            learner = distributed.DistributedTBPTT(strategy, learner)
        episodes = Episodes(config, family, rule, meta_optimizer, learner)
        return loop.train_loop(episodes.trainer(workdir), workdir, config.train, log=log)


class Episodes:
    """The meta-iterations of a learned-rule run: truncated unrolls of episodes of sampled tasks.

    Meta-iteration i is unroll i % num_unrolls of episode i // num_unrolls, whose task, initial
    parameters and minibatches come from the episode's stateless seed.
    """

    def __init__(self, config, family, rule, meta_optimizer, learner):
        self.config, self.family, self.rule = config, family, rule
        self.meta_optimizer, self.learner = meta_optimizer, learner
        meta_cfg = config.meta
        self.unroll_length = meta_cfg.unroll_length
        self.num_unrolls = meta_cfg.num_steps // meta_cfg.unroll_length
        self.task, self.init_seed, self.batch_seed, self.params, self.state = _start_episode(
            family, rule, config.seed, 0
        )
        self.episode_state = EpisodeState(self.params, self.state)

    def trainer(self, workdir) -> loop.Trainer:
        config, meta_cfg, train_cfg = self.config, self.config.meta, self.config.train
        val_fn = make_trajectory_fn(self.family, self.rule, meta_cfg.num_steps)
        val_last_steps = train_cfg.val_last_steps

        def score(i):
            val, _ = evaluation.validation_score(
                val_fn, self.family, config.seed, train_cfg.num_val_tasks, val_last_steps
            )
            return val

        validation = loop.Validation(
            key="val_final_loss_mean",
            score=score,
            module=self.rule,
            info=lambda i, val: {
                "iteration": i,
                "val_final_loss_mean": val,
                "num_val_tasks": train_cfg.num_val_tasks,
                "val_last_steps": val_last_steps,
            },
            describe=lambda val: f"validation final loss {val:.4g}",
        )
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
            before_save=lambda: self.episode_state.store(self.params, self.state),
            describe=(
                f"meta-training {train_cfg.num_meta_iterations} meta-iterations "
                f"({self.num_unrolls} unrolls of {self.unroll_length} steps per episode) in "
                f"{workdir}"
            ),
            trace_count=lambda: self.learner.trace_count,
        )

    def after_restore(self, iteration: int) -> None:
        """Continues the checkpointed episode: its task and seeds, and its saved params/state."""
        episode = iteration // self.num_unrolls
        self.task, self.init_seed, self.batch_seed, _, _ = _start_episode(
            self.family, self.rule, self.config.seed, episode
        )
        self.params, self.state = self.episode_state.load()

    def step(self, start: int, count: int, total: int) -> dict:
        """Meta-iteration `start` (the loop's blocks are one unroll long: `count` is 1)."""
        del count
        meta_cfg = self.config.meta
        episode, unroll = divmod(start, self.num_unrolls)
        if unroll == 0:
            self.task, self.init_seed, self.batch_seed, self.params, self.state = _start_episode(
                self.family, self.rule, self.config.seed, episode
            )
        step0 = tf.constant(unroll * self.unroll_length, tf.int32)
        self.meta_optimizer.rule.learning_rate.assign(
            meta_cfg.learning_rate
            * learning_rate_factor(
                meta_cfg.lr_schedule, start, total, meta_cfg.final_lr_fraction
            )
        )
        self.params, self.state, m = self.learner.meta_step(
            self.params, self.state, self.task, self.batch_seed, step0
        )
        skipped = bool(m["skipped"])
        if skipped:
            # The optimizee is no longer finite: restart this episode's task from theta_0.
            self.params = self.family.init_params(self.task, self.init_seed)
            self.state = self.rule.init(self.params)
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
