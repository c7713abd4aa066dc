"""iMAML on sinusoid regression (Rajeswaran et al., 2019).

One inner SGD step on the proximally regularized support loss (lambda = 1000), meta-gradient by
five conjugate-gradient iterations with Hessian-vector products; 20,000 meta-iterations.
"""

import ml_collections

from configs.maml_sinusoid import sinusoid_config


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    c = sinusoid_config("imaml", variant)
    # lambda = 1000 and one inner step of SGD at 0.01: smaller lambda (1 to 100) made
    # (I + H / lambda) badly conditioned for this MLP's MSE (its Hessian has large and
    # negative eigenvalues) and meta-training did not progress in 1,000-iteration trials.
    c.meta.num_inner_steps = 1
    c.meta.inner_learning_rate = 0.01
    c.meta.lam = 1000.0
    c.meta.cg_steps = 5
    if not variant:  # each meta-iteration also solves a CG system
        c.train.num_meta_iterations = 20000
    return c
