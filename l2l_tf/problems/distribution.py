"""A distribution over task families: the broad meta-training set of the generalist optimizer.

Each episode of meta-training samples one task *configuration* in Python, from the episode's
index and the run's seed (so a resumed run samples the same ones):

    kind      "mlp" with probability 1 - conv_fraction - quadratic_fraction, else "conv" or
              "quadratic"
    dataset   uniformly from `datasets` (sets that do not load here are left out, and said so)
    hidden    depth from `depths`, every layer of one width from `widths` (MLPs); channels from
              `conv_channels` (conv nets); dimension from `quadratic_dims` (quadratics)
    steps     the episode's horizon, log-uniform in [min_steps, max_steps], rounded to a
              multiple of the truncation length

and the family samples the rest per task inside the graph (activation from `activations`,
batch size from `batch_sizes`; see `problems/mlp.py`), so the number of distinct traced
functions is the number of shape configurations, not of tasks.

Configurations are written as *specs*, one line each, e.g.

    mlp dataset=digits hidden_sizes=48,48 activation=tanh batch_size=128 steps=300

`parse_spec` turns one into (family name, constructor fields, steps). The config's
`problem.validation` specs choose the best checkpoint; they use widths that training never
samples, so they are configurations held out of meta-training.
"""

import math

import numpy as np

from l2l_tf.data import classification
from l2l_tf.errors import UserError
from l2l_tf.problems.base import TaskFamily
from l2l_tf.problems.mlp import MLP, ConvNet
from l2l_tf.problems.quadratic import Quadratic

#: Spec kind -> family class.
FAMILIES = {"mlp": MLP, "conv": ConvNet, "quadratic": Quadratic}
KINDS = tuple(FAMILIES)


def _value(text: str):
    if "," in text:
        return tuple(_value(t) for t in text.split(",") if t)
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_spec(spec: str) -> tuple[str, dict, int]:
    """'KIND key=value ... steps=N' -> (KIND, {key: value}, N).

    Comma-separated values become tuples ("hidden_sizes=32," is a one-layer net).

    Raises:
      UserError: an unknown kind, a field without '=', or no positive steps.
    """
    words = str(spec).split()
    if not words or words[0] not in KINDS:
        raise UserError(f"task spec {spec!r} must start with one of {', '.join(KINDS)}")
    fields = {}
    for word in words[1:]:
        key, sep, text = word.partition("=")
        if not sep or not key:
            raise UserError(f"task spec {spec!r}: expected key=value, got {word!r}")
        fields[key] = _value(text)
    steps = fields.pop("steps", None)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise UserError(f"task spec {spec!r} needs steps=N with N a positive integer")
    return words[0], fields, steps


def format_spec(kind: str, fields: dict, steps: int) -> str:
    """The inverse of `parse_spec`."""

    def text(v):
        if isinstance(v, (tuple, list)):
            return ",".join(text(x) for x in v) + ("," if len(v) == 1 else "")
        return str(v)

    words = [kind] + [f"{k}={text(v)}" for k, v in fields.items()] + [f"steps={steps}"]
    return " ".join(words)


class TaskDistribution:
    """Samples one task configuration per episode (module docstring)."""

    def __init__(
        self,
        datasets=("mnist14", "digits", "fashion14"),
        depths=(1, 2, 3),
        widths=(8, 16, 32, 64, 128),
        activations=("sigmoid", "tanh", "relu", "gelu"),
        batch_sizes=(32, 64, 128, 256),
        conv_fraction: float = 0.1,
        conv_channels=((8, 16),),
        quadratic_fraction: float = 0.1,
        quadratic_dims=(10,),
        num_members: int = 4,
        min_steps: int = 100,
        max_steps: int = 1000,
        validation=(),
        log=print,
    ):
        for field, value in (
            ("min_steps", min_steps),
            ("max_steps", max_steps),
            ("num_members", num_members),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(f"problem.{field} must be a positive integer, got {value!r}")
        if min_steps > max_steps:
            raise UserError(f"problem.min_steps ({min_steps}) exceeds max_steps ({max_steps})")
        for field, value in (
            ("conv_fraction", conv_fraction),
            ("quadratic_fraction", quadratic_fraction),
        ):
            if not 0 <= value <= 1:
                raise UserError(f"problem.{field} must be in [0, 1], got {value!r}")
        if conv_fraction + quadratic_fraction > 1:
            raise UserError("problem.conv_fraction + problem.quadratic_fraction exceeds 1")
        unknown = [d for d in datasets if d not in classification.DATASETS]
        if unknown:
            raise UserError(
                f"problem.datasets: unknown {unknown}; valid: {classification.DATASETS}"
            )
        self.datasets = tuple(d for d in datasets if classification.available(d))
        missing = [d for d in datasets if d not in self.datasets]
        if missing:
            log(f"task distribution: {', '.join(missing)} not available here, left out")
        if not self.datasets:
            raise UserError(f"none of problem.datasets {tuple(datasets)} loads on this machine")
        self.image_datasets = tuple(d for d in self.datasets if d in classification.IMAGE_SHAPES)
        self.depths, self.widths = tuple(depths), tuple(widths)
        self.activations, self.batch_sizes = tuple(activations), tuple(batch_sizes)
        self.conv_fraction, self.quadratic_fraction = (
            float(conv_fraction),
            float(quadratic_fraction),
        )
        self.conv_channels = tuple(tuple(c) for c in conv_channels)
        self.quadratic_dims = tuple(quadratic_dims)
        self.num_members = num_members
        self.min_steps, self.max_steps = min_steps, max_steps
        self.validation = tuple(parse_spec(s) for s in validation)
        if not self.validation:
            raise UserError("problem.validation must list at least one task spec")
        self._families = {}

    def sample(self, seed: int, episode: int, multiple: int = 1) -> tuple[str, dict, int]:
        """Episode `episode`'s configuration (kind, fields, steps), steps a multiple of
        `multiple`; a pure function of (seed, episode)."""
        rng = np.random.default_rng([int(seed), int(episode), 17])
        u = rng.uniform()
        log_steps = rng.uniform(math.log(self.min_steps), math.log(self.max_steps))
        steps = max(multiple, int(round(math.exp(log_steps) / multiple)) * multiple)
        members = {"num_members": self.num_members}
        if u < self.quadratic_fraction:
            dims = int(rng.choice(self.quadratic_dims))
            return "quadratic", {"dims": dims, "batch_size": self.num_members}, steps
        shared = {
            "activation": self.activations,
            "batch_size": self.batch_sizes,
            **members,
        }
        if u < self.quadratic_fraction + self.conv_fraction and self.image_datasets:
            dataset = str(rng.choice(self.image_datasets))
            channels = self.conv_channels[rng.integers(len(self.conv_channels))]
            return "conv", {"dataset": dataset, "channels": channels, **shared}, steps
        dataset = str(rng.choice(self.datasets))
        depth = int(rng.choice(self.depths))
        width = int(rng.choice(self.widths))
        return "mlp", {"dataset": dataset, "hidden_sizes": (width,) * depth, **shared}, steps

    def family(self, kind: str, fields: dict) -> TaskFamily:
        """The family of one configuration, built once and then reused (one trace each)."""
        return build_family(kind, fields, self._families)

    def episode(self, seed: int, episode: int, multiple: int = 1) -> tuple[TaskFamily, int]:
        """(family, horizon) of meta-training episode `episode`."""
        kind, fields, steps = self.sample(seed, episode, multiple)
        return self.family(kind, fields), steps

    def validation_tasks(self) -> list[tuple[str, TaskFamily, int]]:
        """(spec, family, horizon) of each `validation` configuration."""
        return [
            (format_spec(kind, fields, steps), self.family(kind, fields), steps)
            for kind, fields, steps in self.validation
        ]


def build_family(kind: str, fields: dict, cache: dict | None = None) -> TaskFamily:
    """The family `kind` with constructor `fields`, from `cache` when it was built before."""
    key = format_spec(kind, fields, 1)
    if cache is not None and key in cache:
        return cache[key]
    try:
        family = FAMILIES[kind](**fields)
    except TypeError as e:
        raise UserError(f"task spec {key!r}: {e}") from None
    if cache is not None:
        cache[key] = family
    return family


class FixedTasks:
    """A single family with a fixed horizon, as `TaskDistribution` presents it."""

    def __init__(self, family: TaskFamily, num_steps: int):
        self.fixed_family, self.num_steps = family, num_steps

    def episode(self, seed: int, episode: int, multiple: int = 1) -> tuple[TaskFamily, int]:
        return self.fixed_family, self.num_steps

    def validation_tasks(self) -> list[tuple[str, TaskFamily, int]]:
        return [(self.fixed_family.name, self.fixed_family, self.num_steps)]
