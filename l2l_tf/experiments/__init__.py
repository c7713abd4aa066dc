"""Experiments: what `train_optimizer.py` and `evaluate.py` run for a config.

Each experiment is a package (`l2l/`, `init/`, `mgrl/`) with the same three functions, built
from the layers below it and never from another experiment:

    train(config, workdir, *, overwrite=False, log=print) -> summary dict   (the one loop)
    evaluate(config, *, workdir, output_dir, num_tasks, num_steps, seed, log=print) -> results
    validate(config)   raises UserError naming the first invalid field

`config.meta.learner` picks the experiment (`EXPERIMENTS`); a new family of meta-learners is one
package and one line here. Experiments are imported on first use, so running one never imports
another's dependencies.
"""

import importlib
from types import ModuleType

from l2l_tf.errors import UserError, lookup

#: meta.learner -> the experiment package that trains and evaluates it.
EXPERIMENTS = {
    "l2l": "l2l",
    # MAML and its relatives learn an initialization (l2l_tf/meta/{maml,reptile,imaml}.py).
    "maml": "init",
    "fomaml": "init",
    "metasgd": "init",
    "reptile": "init",
    "imaml": "init",
    "mgrl": "mgrl",
}


def learner_name(config) -> str:
    """`config.meta.learner`, "l2l" where the config has none."""
    meta = config.get("meta") if config is not None else None
    return (meta.get("learner") if meta else None) or "l2l"


def experiment_for(config) -> ModuleType:
    """The experiment package of `config` (by `config.meta.learner`, default "l2l")."""
    name = learner_name(config)
    if not isinstance(name, str):
        raise UserError(f"meta.learner must be a string, got {name!r}")
    package = lookup(EXPERIMENTS, name, "meta.learner")
    return importlib.import_module(f"l2l_tf.experiments.{package}")


def validate(config) -> None:
    """Validates `config` with its experiment's checks (UserError naming the first bad field)."""
    experiment_for(config).validate(config)
