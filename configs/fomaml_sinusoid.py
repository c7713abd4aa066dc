"""First-order MAML on sinusoid regression (Finn et al., 2017, section 5.2).

MAML's setting (configs/maml_sinusoid.py) with the inner gradients stopped.
"""

import ml_collections

from configs.maml_sinusoid import sinusoid_config


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    return sinusoid_config("fomaml", variant)
