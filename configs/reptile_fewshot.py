"""Reptile on N-way K-shot classification (Nichol et al., 2018, section 7.2).

Five inner SGD steps on the support set; the outer step (plain SGD on theta - mean(phi)) starts
at epsilon = 1 and is annealed linearly to 0, as in the paper.
"""

import ml_collections

from configs.maml_fewshot import fewshot_config


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    c = fewshot_config("reptile", variant)
    c.meta.num_inner_steps = 5
    c.meta.inner_learning_rate = 0.1
    c.meta.optimizer = "sgd"
    c.meta.learning_rate = 1.0
    c.meta.lr_schedule = "linear"
    return c
