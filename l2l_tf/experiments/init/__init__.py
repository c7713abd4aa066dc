"""Learned initializations: MAML, first-order MAML, Reptile, Meta-SGD and iMAML, evaluated by
the metric after each adaptation step against pretrained and from-scratch baselines."""

from l2l_tf.experiments.init.evaluation import evaluate
from l2l_tf.experiments.init.training import train
from l2l_tf.experiments.init.validation import validate

__all__ = ["evaluate", "train", "validate"]
