"""Reinforcement learning: batched in-graph environments, the lambda-return, an A2C agent.

To add an environment: write an `Environment` in `envs.py` (or its own module) whose constructor
takes the config fields under `env.` as keyword arguments, and add one line to `ENVIRONMENTS`.
"""

import ml_collections

from l2l_tf.errors import UserError, lookup
from l2l_tf.rl.envs import CartPole, Chain, Environment, GymnasiumEnv

ENVIRONMENTS = {
    "cartpole": CartPole,
    "chain": Chain,
    "gymnasium": GymnasiumEnv,
}

#: Fields of `env.` read by the runner rather than by the environment's constructor.
RUNNER_FIELDS = ("name", "num_envs")


def make_env(env_config: ml_collections.ConfigDict, **overrides) -> Environment:
    """Builds the environment named by `env_config.name` from its other fields."""
    cls = lookup(ENVIRONMENTS, env_config.get("name"), "environment")
    kwargs = {k: v for k, v in env_config.items() if k not in RUNNER_FIELDS}
    kwargs.update(overrides)
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise UserError(f"env {env_config.get('name')!r}: {e}") from None


__all__ = ["ENVIRONMENTS", "Environment", "make_env"]
