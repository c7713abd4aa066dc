"""A trained coordinatewise LSTM as a Keras 3 optimizer, for any Keras model.

    from l2l_tf.keras import LearnedOptimizer

    optimizer = LearnedOptimizer.from_workdir("runs/quadratic")
    model.compile(optimizer=optimizer, loss=...)
    model.fit(x, y)

The optimizer runs the meta-trained rule itself (`CoordinatewiseLSTM.step`), so the gradient
preprocessing and the output scale are exactly those of meta-training. Because the LSTM is
coordinatewise, it is applied to each model variable separately: every variable keeps its own
hidden and cell state, one [size, hidden_size] slot per LSTM layer for each of h and c, and one
step on a list of variables computes the same updates as the rule's own step on the flattened
list (the project's inner loop, `l2l_tf.unroll.optimizee_step`).

The slots are ordinary Keras optimizer variables, so they are saved and restored with the
model's checkpoint (`tf.train.Checkpoint(model=..., optimizer=...)` or `model.save`), and the
rule's weights and hyperparameters are part of `get_config()`, so a saved `.keras` model loads
with `keras.models.load_model` (the class is registered as a Keras serializable once this module
is imported).

This module is `l2l_tf.keras`; inside it, `import keras` still means the Keras package, because
imports are absolute.
"""

import warnings
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from l2l_tf.errors import UserError
from l2l_tf.optimizers.lstm import CoordinatewiseLSTM, LSTMState
from l2l_tf.optimizers.mlp_rule import MLPRule

#: The constructor fields of `CoordinatewiseLSTM` that define the rule's arithmetic.
_RULE_FIELDS = (
    "hidden_size",
    "num_layers",
    "preprocess",
    "preprocess_p",
    "output_scale",
    "beta1",
    "beta2",
    "normalize",
    "rms_output_scale",
    "rms_input",
)


#: Why a rule meta-trained on raw gradients rarely works on another model: its inputs carry the
#: gradient's scale, which differs between its training tasks and a Keras model.
UNSCALED_INPUTS_WARNING = (
    "this LSTM was meta-trained with rule.preprocess='none' (raw gradients as inputs), so its "
    "steps are tuned to the gradient scale of its training tasks and rarely transfer to another "
    "model (a quadratic run trains an MNIST MLP to chance accuracy); meta-train with "
    "--config.rule.preprocess=log_sign for Keras models (see docs/keras.md)"
)


def _rule_weights(rule) -> list[tf.Variable]:
    # A fixed order (not trainable_variables' attribute-name order), for get_config().
    if isinstance(rule, MLPRule):
        return rule.weights
    return [*rule.kernels, *rule.biases, rule.out_kernel, rule.out_bias]


def _build_rule(rule_config: dict):
    """The rule of a `get_config()` dict: an MLPRule when it names one, else the LSTM."""
    fields = dict(rule_config)
    if fields.pop("name", "lstm") == "mlp_rule":
        return MLPRule(**fields)
    return CoordinatewiseLSTM(**fields)


@keras.saving.register_keras_serializable(package="l2l_tf")
class LearnedOptimizer(keras.optimizers.Optimizer):
    """A Keras optimizer that applies a trained `CoordinatewiseLSTM` update rule.

    Each step adds `learning_rate * u` to every variable, where `u` is the rule's update for the
    variable's gradient. The default `learning_rate=1.0` applies the rule exactly as it was
    meta-trained; other values (or a schedule) scale its updates.
    """

    def __init__(
        self,
        rule: CoordinatewiseLSTM | None = None,
        learning_rate: float = 1.0,
        name: str = "learned_optimizer",
        rule_config: dict | None = None,
        rule_weights: list | None = None,
        **kwargs,
    ):
        """Wraps `rule`, or rebuilds one from `rule_config` and `rule_weights`.

        Args:
          rule: a (trained) `CoordinatewiseLSTM`; its weights are used as they are, not copied.
          learning_rate: multiplies the rule's updates (1.0: the rule as meta-trained).
          name: the optimizer's name.
          rule_config, rule_weights: instead of `rule`, its hyperparameters and weights as
            `get_config()` writes them (used when a saved model is loaded).
          **kwargs: other `keras.optimizers.Optimizer` arguments (e.g. `global_clipnorm`).
        """
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        if rule is None:
            if rule_config is None:
                raise UserError("LearnedOptimizer needs a rule (or rule_config and rule_weights)")
            rule = _build_rule(rule_config)
            if rule_weights is not None:
                variables = _rule_weights(rule)
                if len(rule_weights) != len(variables):
                    raise UserError(
                        f"rule_weights has {len(rule_weights)} arrays; the rule has "
                        f"{len(variables)}"
                    )
                for v, w in zip(variables, rule_weights):
                    v.assign(np.asarray(w, dtype=v.dtype.as_numpy_dtype).reshape(v.shape))
        if isinstance(rule, MLPRule):
            self.rule = rule
            return
        if not isinstance(rule, CoordinatewiseLSTM):
            raise UserError(
                "LearnedOptimizer applies a CoordinatewiseLSTM or an MLPRule, got "
                f"{type(rule).__name__}"
            )
        if rule.stateful_features:
            raise UserError(
                f"LearnedOptimizer supports the stateless preprocessings (none, log_sign), "
                f"not rule.preprocess={rule.preprocess!r}"
            )
        if rule.normalize != "none":
            raise UserError(
                "LearnedOptimizer applies rules with rule.normalize='none' only (one variable "
                f"at a time, with no members axis), not {rule.normalize!r}"
            )
        if rule.rms_output_scale > 0 or rule.rms_input:
            raise UserError(
                "LearnedOptimizer applies rules with rule.rms_output_scale=0 and "
                "rule.rms_input=False only (one variable at a time, with no members axis)"
            )
        if rule.preprocess == "none":
            warnings.warn(UNSCALED_INPUTS_WARNING, UserWarning, stacklevel=2)
        self.rule = rule

    @classmethod
    def pretrained(cls, name: str = "generalist", **kwargs) -> "LearnedOptimizer":
        """The optimizer shipped in the package as `name` (`l2l_tf.pretrained.load`), for
        `model.compile(optimizer=...)` with no meta-training.

        Args:
          name: a shipped optimizer (`l2l_tf.pretrained.names()`).
          **kwargs: passed to the constructor (e.g. `learning_rate`, which scales its steps).
        """
        from l2l_tf import pretrained

        return cls(pretrained.load(name), **kwargs)

    @classmethod
    def from_checkpoint(cls, prefix: str | Path, rule_config: dict, **kwargs) -> "LearnedOptimizer":
        """Loads the rule saved at checkpoint `prefix` (e.g. `DIR/best/model`).

        Args:
          prefix: a `tf.train.Checkpoint(rule=...)` prefix, as `workdir_lib.save_best` writes.
          rule_config: the `rule` section of the run's config (`name` and the fields of
            `CoordinatewiseLSTM`).
          **kwargs: passed to the constructor (e.g. `learning_rate`).

        Returns:
          The optimizer.

        Raises:
          UserError: if the checkpoint is missing or does not match `rule_config`.
        """
        from l2l_tf.optimizers import make_rule

        prefix = Path(prefix)
        if not Path(f"{prefix}.index").is_file():
            raise UserError(f"no checkpoint at {str(prefix)!r} ({prefix}.index is missing)")
        rule = make_rule(rule_config)
        if not isinstance(rule, (CoordinatewiseLSTM, MLPRule)):
            raise UserError(
                "rule.name must name a coordinatewise LSTM or an MLP rule, got "
                f"{rule_config.get('name')!r}"
            )
        try:
            tf.train.Checkpoint(rule=rule).read(str(prefix)).assert_consumed()
        except (ValueError, AssertionError, tf.errors.OpError) as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise UserError(
                f"the checkpoint {str(prefix)!r} does not match the rule config: {first}"
            ) from None
        return cls(rule, **kwargs)

    @classmethod
    def from_workdir(cls, workdir: str | Path, **kwargs) -> "LearnedOptimizer":
        """Loads the best meta-parameters of a `train_optimizer.py` work directory.

        Args:
          workdir: a work directory holding `config.json` and `best/`.
          **kwargs: passed to the constructor (e.g. `learning_rate`).

        Returns:
          The optimizer.

        Raises:
          UserError: if `workdir` is missing, is not a work directory, or has no trained rule.
        """
        from l2l_tf import config as config_lib
        from l2l_tf.experiments.l2l import training as l2l_training
        from l2l_tf.run import workdir as workdir_lib

        config = config_lib.load_workdir_config(workdir)
        rule = l2l_training.build_learned_rule(config)
        if not isinstance(rule, (CoordinatewiseLSTM, MLPRule)):
            raise UserError(
                f"{workdir}: rule.name {config.rule.name!r} is not a coordinatewise LSTM rule"
            )
        workdir_lib.restore_best(rule, workdir)
        return cls(rule, **kwargs)

    def build(self, variables):
        """Creates the LSTM state slots: h and c of every layer for every variable."""
        if self.built:
            return
        super().build(variables)
        if isinstance(self.rule, MLPRule):
            return self._build_state_slots(variables)
        hidden, dtype = self.rule.hidden_size, self.rule.dtype.name
        self._lstm_h, self._lstm_c = [], []
        for variable in variables:
            size = int(np.prod(variable.shape))
            for slots, kind in ((self._lstm_h, "h"), (self._lstm_c, "c")):
                slots.append(
                    [
                        self.add_variable(
                            (size, hidden),
                            dtype=dtype,
                            name=f"{_slot_prefix(variable)}_lstm_{kind}{layer}",
                        )
                        for layer in range(self.rule.num_layers)
                    ]
                )

    def _build_state_slots(self, variables):
        """One slot per tensor of the rule's state for each variable (momenta, v, step).

        The rule sees each variable with a leading members axis of size 1, the layout of
        meta-training, so its per-tensor statistics are those of the variable."""
        self._state_slots, self._state_structures = [], []
        for variable in variables:
            state = self.rule.init([tf.zeros([1, *variable.shape], variable.dtype)])
            self._state_structures.append(tf.nest.map_structure(lambda t: None, state))
            self._state_slots.append(
                [
                    self.add_variable(
                        tuple(t.shape), dtype=t.dtype.name, name=f"{_slot_prefix(variable)}_s{k}"
                    )
                    for k, t in enumerate(tf.nest.flatten(state))
                ]
            )

    def _rule_state(self, variable):
        index = self._get_variable_index(variable)
        values = [tf.convert_to_tensor(s) for s in self._state_slots[index]]
        return tf.nest.pack_sequence_as(self._state_structures[index], values), self._state_slots[
            index
        ]

    def update_step(self, gradient, variable, learning_rate):
        """One rule step for one variable, carrying that variable's rule state."""
        if isinstance(self.rule, MLPRule):
            gradient = tf.cast(tf.convert_to_tensor(gradient), variable.dtype)
            state, slots = self._rule_state(variable)
            value = tf.convert_to_tensor(variable)
            (update,), state = self.rule.step([gradient[None]], state, [value[None]])
            for slot, t in zip(slots, tf.nest.flatten(state)):
                self.assign(slot, t)
            self.assign_add(variable, tf.cast(learning_rate, variable.dtype) * update[0])
            return
        index = self._get_variable_index(variable)
        h_slots, c_slots = self._lstm_h[index], self._lstm_c[index]
        gradient = tf.convert_to_tensor(gradient)  # densifies IndexedSlices
        gradient = tf.cast(gradient, variable.dtype)
        state = LSTMState(h=tuple(s.value for s in h_slots), c=tuple(s.value for s in c_slots))
        (update,), state = self.rule.step([gradient], state, [variable])
        for slot, value in zip(h_slots, state.h):
            self.assign(slot, value)
        for slot, value in zip(c_slots, state.c):
            self.assign(slot, value)
        self.assign_add(variable, tf.cast(learning_rate, variable.dtype) * update)

    def lstm_state(self, variable) -> LSTMState:
        """The current LSTM state of `variable` (h and c per layer, each [size, hidden])."""
        index = self._get_variable_index(variable)
        return LSTMState(
            h=tuple(tf.convert_to_tensor(s) for s in self._lstm_h[index]),
            c=tuple(tf.convert_to_tensor(s) for s in self._lstm_c[index]),
        )

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        if isinstance(self.rule, MLPRule):
            config["rule_config"] = {**self.rule.config(), "dtype": self.rule.dtype.name}
            config["rule_weights"] = [np.asarray(v.numpy()).tolist() for v in self.rule.weights]
            return config
        config["rule_config"] = {f: getattr(self.rule, f) for f in _RULE_FIELDS}
        config["rule_config"]["dtype"] = self.rule.dtype.name
        config["rule_weights"] = [v.numpy().tolist() for v in _rule_weights(self.rule)]
        return config


def _slot_prefix(variable) -> str:
    name = getattr(variable, "path", None) or str(variable.name)
    return name.replace("/", "_").replace(":", "_")
