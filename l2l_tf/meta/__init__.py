"""Meta-learners: what is learned and how its outer gradient is estimated."""

from l2l_tf.meta.l2l import TruncatedBPTT
from l2l_tf.meta.mgrl import MetaGradientRL
from l2l_tf.meta.optimizer import MetaOptimizer

META_LEARNERS = {
    "l2l": TruncatedBPTT,
    "mgrl": MetaGradientRL,
}

__all__ = ["META_LEARNERS", "MetaGradientRL", "MetaOptimizer", "TruncatedBPTT"]
