"""Meta-SGD on sinusoid regression (Li et al., 2017, section 4.1; table 1).

MAML's setting with learned per-parameter inner rates, initialized uniformly in [0.005, 0.1].
"""

import ml_collections

from configs.maml_sinusoid import sinusoid_config


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    c = sinusoid_config("metasgd", variant)
    c.meta.rate_init_range = (0.005, 0.1)
    return c
