"""iMAML on N-way K-shot classification (Rajeswaran et al., 2019, section 5).

Five inner SGD steps on the proximally regularized support loss (lambda = 2, the paper's
Omniglot value), meta-gradient by five conjugate-gradient iterations with Hessian-vector
products.
"""

import ml_collections

from configs.maml_fewshot import fewshot_config


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    c = fewshot_config("imaml", variant)
    c.meta.num_inner_steps = 5
    c.meta.inner_learning_rate = 0.1
    c.meta.lam = 2.0
    c.meta.cg_steps = 5
    return c
