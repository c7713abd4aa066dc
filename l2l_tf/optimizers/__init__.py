"""Update rules (hand-designed and learned) and their registry.

To add a rule: write an `UpdateRule` in its own module and add one line to `UPDATE_RULES`.
"""

import ml_collections

from l2l_tf.errors import UserError, lookup
from l2l_tf.optimizers.base import UpdateRule, apply_updates
from l2l_tf.optimizers.hand import NAG, SGD, Adam, Momentum, RMSprop
from l2l_tf.optimizers.lstm import CoordinatewiseLSTM
from l2l_tf.optimizers.mlp_rule import MLPRule
from l2l_tf.optimizers.synaptic import Hebbian, SynapticRule

UPDATE_RULES = {
    "sgd": SGD,
    "momentum": Momentum,
    "nag": NAG,
    "rmsprop": RMSprop,
    "adam": Adam,
    "lstm": CoordinatewiseLSTM,
    "mlp_rule": MLPRule,
    "synaptic": SynapticRule,
    "hebbian": Hebbian,
}

#: The hand-designed baselines every learned rule is compared with, in report order.
BASELINES = ("sgd", "momentum", "nag", "rmsprop", "adam")
#: Hand-designed baselines that need local signals (`needs_signals`), for the synaptic rule.
SIGNAL_BASELINES = ("hebbian",)


def make_rule(rule_config: ml_collections.ConfigDict, **overrides) -> UpdateRule:
    """Builds the rule named by `rule_config.name` from the other fields."""
    cls = lookup(UPDATE_RULES, rule_config.get("name"), "update rule")
    kwargs = {k: v for k, v in rule_config.items() if k != "name"}
    kwargs.update(overrides)
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise UserError(f"rule {rule_config.get('name')!r}: {e}") from None


__all__ = [
    "BASELINES",
    "SIGNAL_BASELINES",
    "UPDATE_RULES",
    "UpdateRule",
    "apply_updates",
    "make_rule",
]
