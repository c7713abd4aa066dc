"""Meta-learners: what is learned and how its outer gradient is estimated."""

from l2l_tf.meta.base import MetaLearner
from l2l_tf.meta.es import PES, AntitheticES
from l2l_tf.meta.imaml import IMAML
from l2l_tf.meta.l2l import TruncatedBPTT
from l2l_tf.meta.maml import FOMAML, MAML, MetaSGD
from l2l_tf.meta.mgrl import MetaGradientRL
from l2l_tf.meta.optimizer import MetaOptimizer
from l2l_tf.meta.reptile import Reptile

META_LEARNERS = {
    "l2l": TruncatedBPTT,
    "maml": MAML,
    "fomaml": FOMAML,
    "metasgd": MetaSGD,
    "reptile": Reptile,
    "imaml": IMAML,
    "mgrl": MetaGradientRL,
}

__all__ = [
    "AntitheticES",
    "FOMAML",
    "IMAML",
    "MAML",
    "META_LEARNERS",
    "MetaGradientRL",
    "MetaLearner",
    "MetaOptimizer",
    "MetaSGD",
    "PES",
    "Reptile",
    "TruncatedBPTT",
]
