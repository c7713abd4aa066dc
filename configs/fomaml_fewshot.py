"""First-order MAML on N-way K-shot classification (Finn et al., 2017, section 5.2).

MAML's few-shot setting (configs/maml_fewshot.py) with the inner gradients stopped.
"""

import ml_collections

from configs.maml_fewshot import fewshot_config


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    return fewshot_config("fomaml", variant)
