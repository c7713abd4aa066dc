"""Trained meta-parameters shipped inside the package, loadable with no meta-training.

    from l2l_tf import pretrained
    rule = pretrained.load("generalist")        # an UpdateRule (l2l_tf.optimizers)

Each shipped optimizer NAME is three files in this directory: `NAME.json` (the rule's config
and where the weights came from), `NAME.npz` (the weights, in the rule's `weights` order) and
`NAME.md` (its card: training config, data, compute and held-out results). `export` writes the
first two from a trained rule; `python scripts/export_pretrained.py --workdir=DIR --name=NAME`
does it for a work directory's best checkpoint.
"""

import json
from pathlib import Path

import numpy as np

from l2l_tf.errors import UserError
from l2l_tf.optimizers import make_rule
from l2l_tf.optimizers.base import UpdateRule

DIRECTORY = Path(__file__).resolve().parent


def names(directory: Path = DIRECTORY) -> list[str]:
    """The shipped optimizers (those with both a .json and an .npz file)."""
    return sorted(p.stem for p in directory.glob("*.json") if p.with_suffix(".npz").is_file())


def info(name: str, directory: Path = DIRECTORY) -> dict:
    """NAME.json: {"rule": config, "source": ..., ...}."""
    path = Path(directory) / f"{name}.json"
    if not path.is_file() or not path.with_suffix(".npz").is_file():
        valid = ", ".join(names(directory)) or "none"
        raise UserError(f"no shipped optimizer {name!r} (available: {valid})")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"{path} is unreadable: {e}") from None


def load(name: str = "generalist", directory: Path = DIRECTORY) -> UpdateRule:
    """The shipped update rule `name`, with its trained weights.

    Raises:
      UserError: an unknown name, or files that do not match the rule they describe.
    """
    meta = info(name, directory)
    rule = make_rule(meta["rule"])
    path = Path(directory) / f"{name}.npz"
    try:
        with np.load(path) as arrays:
            values = [arrays[f"w{i}"] for i in range(len(arrays.files))]
    except (OSError, ValueError, KeyError) as e:
        raise UserError(f"{path} is unreadable: {e}") from None
    weights = rule.weights
    if len(values) != len(weights) or any(
        tuple(v.shape) != tuple(w.shape) for v, w in zip(values, weights)
    ):
        raise UserError(f"{path} does not match the rule of {name}.json")
    for w, v in zip(weights, values):
        w.assign(v.astype(w.dtype.as_numpy_dtype))
    return rule


def export(rule: UpdateRule, name: str, provenance: dict, directory: Path = DIRECTORY) -> list:
    """Writes NAME.json (rule config + `provenance`) and NAME.npz (weights) for `rule`.

    Returns:
      The two paths written.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    npz = directory / f"{name}.npz"
    np.savez(npz, **{f"w{i}": w.numpy() for i, w in enumerate(rule.weights)})
    meta = {"rule": rule.config(), **provenance}
    path = directory / f"{name}.json"
    path.write_text(json.dumps(meta, indent=2) + "\n")
    return [path, npz]
