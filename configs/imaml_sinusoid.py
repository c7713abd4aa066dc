"""iMAML on sinusoid regression (Rajeswaran et al., 2019).

Five inner SGD steps on the proximally regularized support loss (lambda = 1), meta-gradient by
five conjugate-gradient iterations with Hessian-vector products; 20,000 meta-iterations.
"""

import ml_collections

from configs.maml_sinusoid import sinusoid_config


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    c = sinusoid_config("imaml", variant)
    c.meta.num_inner_steps = 5
    c.meta.inner_learning_rate = 0.02
    c.meta.lam = 1.0
    c.meta.cg_steps = 5
    if not variant:  # each meta-iteration solves a CG system: about 5x the cost of MAML's
        c.train.num_meta_iterations = 20000
    return c
