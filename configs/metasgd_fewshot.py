"""Meta-SGD on N-way K-shot classification (Li et al., 2017, section 4.2).

MAML's few-shot setting with learned per-parameter inner rates, initialized uniformly in
[0.1, 0.5] (around MAML's fixed 0.4; the paper's [0.005, 0.1] learns too slowly in this run's
3,000 meta-iterations of one inner step).
"""

import ml_collections

from configs.maml_fewshot import fewshot_config


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    c = fewshot_config("metasgd", variant)
    c.meta.rate_init_range = (0.1, 0.5)
    return c
