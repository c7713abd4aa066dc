"""Meta-gradient RL on the chain world, where the best discount is known.

The chain (`l2l_tf/rl/envs.py:Chain`) pays 3 at the end 2 steps left of the start (a distractor)
and 10 at the end 7 steps right; episodes end at either end or after 50 steps. The
gamma-optimal policy walks to the far end only when gamma > gamma* = 0.3 ** (1/5) = 0.786, and
that policy is also the one with the highest undiscounted return. The agent starts with
gamma = 0.5 < gamma*, where the gamma-optimal policy is myopic, and meta-learns against the
reference (gamma', lambda') = (0.99, 1); `evaluate.py` compares it with fixed gammas on both
sides of gamma*. (With a distractor of 1, as before, A2C reached the far end at every gamma of
the grid, so the discount did not matter; with 3 it does, see docs/results/mgrl.md.)

Usage: --config=configs/mgrl_chain.py, or configs/mgrl_chain.py:quick (about 30 s of CPU time).
"""

import ml_collections

from configs import mgrl_cartpole


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    if variant not in ("", "quick"):
        raise ValueError(f"unknown variant {variant!r} of configs/mgrl_chain.py (valid: quick)")
    c = mgrl_cartpole.get_config()
    c.env = ml_collections.ConfigDict()
    c.env.name = "chain"
    c.env.num_envs = 16
    c.env.length = 10
    c.env.start = 2
    c.env.near_reward = 3.0  # the distractor: gamma* = 0.3 ** (1/5) = 0.786
    c.env.far_reward = 10.0
    c.env.max_steps = 50

    c.agent.hidden_sizes = (32,)
    c.agent.embedding_size = 8
    c.agent.rollout_length = 10
    c.agent.entropy_coef = 0.01

    c.meta.learn = ("gamma", "lambda")  # the discount is what matters here
    c.meta.init_gamma = 0.5  # below gamma* = 0.786: the myopic policy is gamma-optimal
    c.meta.init_lambda = 0.8
    c.meta.learning_rate = 0.1  # chosen on seeds 3000-3002 (3e-2 moved gamma less)

    c.train.num_meta_iterations = 600
    c.train.log_every = 20
    c.train.checkpoint_every = 200

    c.eval.num_seeds = 5
    c.eval.num_meta_iterations = 600
    c.eval.log_every = 20
    c.eval.gammas = (0.3, 0.5, 0.7, 0.9, 0.95, 0.98)  # gamma* = 0.786 lies between 0.7 and 0.9
    c.eval.lambdas = (0.8,)

    if variant == "quick":
        c.meta.jit_compile = False
        c.env.num_envs = 8
        c.train.num_meta_iterations = 40
        c.train.log_every = 10
        c.train.checkpoint_every = 20
        c.eval.num_seeds = 2
        c.eval.num_meta_iterations = 30
        c.eval.log_every = 10
        c.eval.gammas = (0.5, 0.9)
    return c
