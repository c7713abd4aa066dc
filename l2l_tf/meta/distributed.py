"""Meta-training over several devices or machines with `tf.distribute`.

`config.distribute` selects the strategy:

    none          one device (the default; no strategy at all)
    mirrored      MirroredStrategy over every local device (GPUs, or logical CPU devices)
    multi_worker  MultiWorkerMirroredStrategy, the cluster read from the TF_CONFIG variable

Data parallelism over the members of a task: every meta-step, each of the R replicas unrolls
its own contiguous block of num_members / R members (same task, same seeds), computes the
meta-gradient of its block and the gradients are summed across replicas before the single
clip-and-apply of `TruncatedBPTT.apply_meta_gradient`. The meta-loss is a *mean* over members,
so each replica's loss and gradient are weighted by its share of the members (1 / R, since the
blocks are equal): the sum of the weighted per-replica gradients is then the gradient of the
global mean, and the meta-parameters follow the single-device trajectory up to float rounding.

The training loop keeps seeing whole tasks: `DistributedTBPTT.meta_step` takes and returns the
params and rule state of all members, in the layout of the single-device run, so resuming,
checkpoints and validation are unchanged and a run may resume with another number of replicas.

A task or minibatch tensor is treated as per-member if its leading axis has `num_members`
entries (params always are) and as shared by all members otherwise.
"""

import contextlib
import copy
import json
import os
from pathlib import Path

import tensorflow as tf

from l2l_tf.errors import UserError
from l2l_tf.meta.l2l import TruncatedBPTT
from l2l_tf.optimizers.lstm import flatten, unflatten
from l2l_tf.problems.base import TaskFamily

DISTRIBUTE_MODES = ("none", "mirrored", "multi_worker")


def make_strategy(distribute: str) -> tf.distribute.Strategy | None:
    """The strategy named by `config.distribute`, or None for one device.

    Call it before any other TensorFlow operation: MultiWorkerMirroredStrategy must be created
    before the runtime starts, and logical devices must be configured before that too.

    Raises:
      UserError: for an unknown name, or `multi_worker` without a valid TF_CONFIG.
    """
    if distribute not in DISTRIBUTE_MODES:
        raise UserError(f"distribute must be one of {list(DISTRIBUTE_MODES)}, got {distribute!r}")
    if distribute == "none":
        return None
    if distribute == "mirrored":
        # Reduce through one device rather than with collective ops: the meta-gradient is
        # small, and collective instances clash between two strategies in one process.
        return tf.distribute.MirroredStrategy(cross_device_ops=tf.distribute.ReductionToOneDevice())
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise UserError(
            "distribute='multi_worker' needs the TF_CONFIG environment variable (the cluster "
            "and this worker's task); see docs/distributed.md"
        )
    try:
        tf_config = json.loads(raw)
        workers = tf_config["cluster"]["worker"]
        tf_config["task"]["index"]
    except (ValueError, KeyError, TypeError) as e:
        raise UserError(
            f"TF_CONFIG is not a valid cluster description ({type(e).__name__}: {e})"
        ) from None
    if not workers:
        raise UserError("TF_CONFIG lists no workers")
    return tf.distribute.MultiWorkerMirroredStrategy()


def scope(strategy: tf.distribute.Strategy | None):
    """`strategy.scope()`, or a no-op for one device: variables created in it are mirrored."""
    return strategy.scope() if strategy is not None else contextlib.nullcontext()


def is_chief(strategy: tf.distribute.Strategy | None) -> bool:
    """True on the worker that owns the work directory (always true without multi_worker)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (
        resolver.task_type == "worker"
        and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict()
    )


def worker_workdir(strategy: tf.distribute.Strategy | None, workdir) -> Path:
    """Where this process writes: WORKDIR on the chief, WORKDIR/worker_N on other workers.

    Every worker runs the whole training loop (validation and checkpoints included, so that
    all of them hold the same state); only the chief's files are the run's results.
    """
    workdir = Path(workdir)
    if is_chief(strategy):
        return workdir
    return workdir / f"worker_{strategy.cluster_resolver.task_id}"


def check_shardable(family: TaskFamily, strategy: tf.distribute.Strategy | None) -> None:
    """Raises a UserError unless the members of a task split evenly across replicas."""
    if strategy is None:
        return
    replicas = strategy.num_replicas_in_sync
    if family.num_members % replicas:
        raise UserError(
            f"distribute: the {family.num_members} members of a task (problem.batch_size) do "
            f"not split evenly across {replicas} replicas"
        )


class MemberShard(TaskFamily):
    """The block of members of the current replica, of tasks of `family`.

    `batch` and `member_losses` take the *whole* task (every replica receives it) and select
    this replica's members; params are already this replica's block.
    """

    def __init__(self, family: TaskFamily, num_shards: int):
        self.family = family
        self.num_shards = int(num_shards)
        self.name = family.name

    @property
    def num_members(self) -> int:
        return self.family.num_members // self.num_shards

    def members(self) -> tf.Tensor:
        """Indices of the current replica's members (call it inside `strategy.run`)."""
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        return tf.range(self.num_members) + tf.cast(replica, tf.int32) * self.num_members

    def select(self, nest, members: tf.Tensor):
        """The members' rows of every per-member tensor of `nest`; shared tensors as they are."""
        size = self.family.num_members

        def pick(t):
            t = tf.convert_to_tensor(t)
            if t.shape.rank and t.shape[0] == size:
                return tf.gather(t, members)
            return t

        return tf.nest.map_structure(pick, nest)

    def batch(self, task, seed):
        return self.select(self.family.batch(task, seed), self.members())

    def member_losses(self, params, task, batch):
        return self.family.member_losses(params, self.select(task, self.members()), batch)


class DistributedTBPTT:
    """`TruncatedBPTT` with the members of each task split across the replicas of `strategy`.

    Same interface as `TruncatedBPTT.meta_step` (whole-task params and rule state in and out),
    so `training.train` uses either one. The rule and the meta-optimizer must have been created
    under `scope(strategy)`.
    """

    def __init__(self, strategy: tf.distribute.Strategy, learner: TruncatedBPTT):
        self.strategy = strategy
        self.learner = learner
        self.family = learner.family
        self.rule = learner.rule
        self.num_replicas = strategy.num_replicas_in_sync
        check_shardable(self.family, strategy)
        # The replicas' learner: the same rule, meta-optimizer and unroll on a block of members.
        self.replica_learner = copy.copy(learner)
        self.replica_learner.family = MemberShard(self.family, self.num_replicas)
        self.trace_count = 0
        self.meta_step = tf.function(self._meta_step)

    # The training loop's estimator interface, as TruncatedBPTT's (carry = params, rule_state).
    start = TruncatedBPTT.start
    advance = TruncatedBPTT.advance

    def _meta_step(self, params, rule_state, task, batch_seed, step0):
        self.trace_count += 1  # Python side effect: runs once per trace, not per call.
        shard = self.replica_learner.family
        num_coords = sum(int(p.shape.num_elements()) for p in params)
        weight = 1.0 / self.num_replicas  # each replica's share of the members

        def split_state(t, members, rows):
            # Rule state is per coordinate ([n, ...], in flatten(params) order), per member
            # ([num_members, ...]) or shared (e.g. a step count).
            if t.shape.rank and t.shape[0] == num_coords:
                return tf.gather(t, rows)
            return shard.select(t, members)

        def replica_fn(params, rule_state, task, batch_seed, step0):
            members = shard.members()
            # Rows of this replica's coordinates in the whole-task flattened layout.
            index = unflatten(tf.range(num_coords), params)
            rows = flatten([tf.gather(i, members) for i in index])
            local_params = [tf.gather(p, members) for p in params]
            local_state = tf.nest.map_structure(lambda t: split_state(t, members, rows), rule_state)
            meta_loss, grads, local_params, local_state = self.replica_learner.meta_gradient(
                local_params, local_state, task, batch_seed, step0
            )
            meta_loss, grads = tf.distribute.get_replica_context().all_reduce(
                tf.distribute.ReduceOp.SUM, (meta_loss * weight, [g * weight for g in grads])
            )
            return meta_loss, grads, local_params, local_state, rows

        meta_loss, grads, local_params, local_state, rows = self.strategy.run(
            replica_fn, args=(params, rule_state, task, batch_seed, step0)
        )
        # After the all-reduce every replica holds the same values; take the first local one.
        first = lambda v: self.strategy.experimental_local_results(v)[0]  # noqa: E731
        meta_loss = first(meta_loss)
        grads = [first(g) for g in grads]
        params = [self.strategy.gather(p, axis=0) for p in local_params]
        rows = self.strategy.gather(rows, axis=0)

        def join_state(t, whole):
            if whole.shape.rank and whole.shape[0] == num_coords:
                gathered = self.strategy.gather(t, axis=0)
                return tf.scatter_nd(rows[:, None], gathered, whole.shape)
            if whole.shape.rank and whole.shape[0] == self.family.num_members:
                return self.strategy.gather(t, axis=0)
            return first(t)

        rule_state = tf.nest.map_structure(join_state, local_state, rule_state)
        metrics = self.learner.apply_meta_gradient(meta_loss, grads)
        return params, rule_state, metrics
