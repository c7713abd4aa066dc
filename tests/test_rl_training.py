"""The MGRL runner: train/resume/evaluate files, config validation, and the command-line mains."""

import json

import numpy as np
import pytest

from l2l_tf import experiments
from l2l_tf.errors import UserError
from l2l_tf.experiments.mgrl import evaluation as mgrl_evaluation
from l2l_tf.experiments.mgrl import training as rl_training
from tests.test_cli import error_line, run


def quiet(*args, **kwargs):
    pass


def tiny_mgrl_config():
    """configs/mgrl_cartpole.py:quick made smaller still, on the chain world."""
    from configs import mgrl_cartpole

    c = mgrl_cartpole.get_config("quick")
    c.meta.learn = ("gamma", "lambda")  # both move, so resume checks both
    c.env = {"name": "chain", "num_envs": 2, "length": 4, "start": 1, "max_steps": 6}
    c.agent.hidden_sizes = (3,)
    c.agent.embedding_size = 2
    c.agent.rollout_length = 3
    c.train.num_meta_iterations = 4
    c.train.log_every = 2
    c.train.checkpoint_every = 2
    c.eval.num_seeds = 2
    c.eval.num_meta_iterations = 4
    c.eval.log_every = 2
    c.eval.final_fraction = 0.5
    c.eval.gammas = (0.5, 0.9)
    return c


def test_train_writes_files_and_resumes_exactly(tmp_path):
    config = tiny_mgrl_config()
    straight = rl_training.train(config, tmp_path / "straight", log=quiet)
    assert straight["iterations"] == 4 and straight["env_steps"] == 5 * 2 * 3
    records = [
        json.loads(line)
        for line in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [r["iteration"] for r in records] == [2, 4]
    assert all(0 < r["gamma"] < 1 and 0 < r["lambda"] < 1 for r in records)
    assert (tmp_path / "straight" / "ckpt" / "checkpoint").is_file()
    assert list((tmp_path / "straight" / "train").iterdir())

    half = config.copy_and_resolve_references()
    half.train.num_meta_iterations = 2
    rl_training.train(half, tmp_path / "resumed", log=quiet)
    lines = []
    resumed = rl_training.train(config, tmp_path / "resumed", log=lines.append)
    assert any("resuming" in line and "iteration 2" in line for line in lines)
    assert resumed["gamma"] == pytest.approx(straight["gamma"], rel=1e-6)
    assert resumed["lambda"] == pytest.approx(straight["lambda"], rel=1e-6)

    # evaluate.py on the finished run (in one test, to compile the learner fewer times).
    evaluate_and_check(config, tmp_path / "straight")


def evaluate_and_check(config, tmp_path):
    results = mgrl_evaluation.evaluate(config, workdir=tmp_path, log=quiet)
    on_disk = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert set(on_disk["runs"]) == {"meta-learned", "gamma=0.5 lambda=0.8", "gamma=0.9 lambda=0.8"}
    assert on_disk["seeds"] == [1000, 1001] and on_disk["env_steps_per_run"] == 30
    for name, r in on_disk["runs"].items():
        assert len(r["curves"]) == 2 and len(r["final_return"]["per_seed"]) == 2
        assert r["curves"][0]["env_steps"] == [18, 30]
        if name != "meta-learned":
            assert r["curves"][0]["gamma"] == pytest.approx([r["gamma"]] * 2)
    assert on_disk["best_fixed"] in on_disk["runs"]
    assert on_disk["training_eta"]["env_steps"] == [18, 30]
    assert results["runs"]["meta-learned"]["final_return"]["mean"] == pytest.approx(
        on_disk["runs"]["meta-learned"]["final_return"]["mean"]
    )
    csv = (tmp_path / "eval" / "curves.csv").read_text().splitlines()
    assert csv[0].startswith('env_steps,"meta-learned"') and len(csv) == 3
    assert "| meta-learned |" in (tmp_path / "eval" / "summary.md").read_text()
    for png in ("returns.png", "eta.png"):
        assert (tmp_path / "eval" / png).read_bytes()[:4] == b"\x89PNG"


def test_evaluate_without_the_fixed_grid_runs_the_meta_learned_agent_alone(tmp_path):
    """eval.fixed_grid=False: for tuning the meta-learner on seeds other than the test seeds."""
    config = tiny_mgrl_config()
    config.eval.fixed_grid = False
    config.meta.objective = "a2c"
    results = mgrl_evaluation.evaluate(config, output_dir=tmp_path, seed=2000, log=quiet)
    assert list(results["runs"]) == ["meta-learned"] and results["best_fixed"] is None
    assert results["seeds"] == [2000, 2001]
    assert (tmp_path / "returns.png").read_bytes()[:4] == b"\x89PNG"
    assert "| meta-learned |" in (tmp_path / "summary.md").read_text()


def test_same_seed_gives_paired_runs_across_settings():
    """reset() reproduces a fresh learner: same seed, same first rollout and same curve."""
    config = tiny_mgrl_config()
    a = rl_training.build_learner(config, learn=(), seed=7)
    b = rl_training.build_learner(config, learn=(), seed=3)
    b.reset(7, (config.meta.init_gamma, config.meta.init_lambda))
    ca = rl_training.run_curve(a, 3, 1)
    cb = rl_training.run_curve(b, 3, 1)
    assert ca["return_sum"] == cb["return_sum"] and ca["episodes"] == cb["episodes"]
    np.testing.assert_allclose(a.params[0].numpy(), b.params[0].numpy(), rtol=1e-6)


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("meta.learn", ("gamma", "alpha"), "meta.learn"),
        ("meta.init_gamma", 1.0, "meta.init_gamma"),
        ("meta.reference_lambda", 1.5, "meta.reference_lambda"),
        ("meta.trace_decay", 1.0, "meta.trace_decay"),
        ("meta.optimizer", "lstm", "meta.optimizer"),
        ("agent.optimizer", "adagrad", "agent.optimizer"),
        ("agent.learning_rate", 0.0, "agent.learning_rate"),
        ("agent.rollout_length", 0, "agent.rollout_length"),
        ("env.num_envs", -1, "env.num_envs"),
        ("eval.gammas", (0.9, 1.0), "eval.gammas"),
        ("eval.lambdas", (), "eval.lambdas"),
        ("eval.num_seeds", 0, "eval.num_seeds"),
        ("agent.hidden_sizes", (0,), "agent.hidden_sizes"),
        ("env.length", 2, "env.start"),
        ("meta.objective", "value", "meta.objective"),
        ("meta.advantage_normalization", "whiten", "meta.advantage_normalization"),
        ("meta.beta1", 1.0, "meta.beta1"),
        ("meta.beta2", -0.1, "meta.beta2"),
        ("meta.condition_on", "both", "meta.condition_on"),
        ("agent.embedding_input", "bias", "agent.embedding_input"),
    ],
)
def test_bad_config_fields_are_named(tmp_path, field, value, message):
    config = tiny_mgrl_config()
    section, name = field.split(".")
    with config.unlocked():
        config[section][name] = value
    with pytest.raises(UserError, match=message):
        rl_training.train(config, tmp_path, log=quiet)


def test_advantage_normalization_needs_the_policy_gradient_objective(tmp_path):
    config = tiny_mgrl_config()
    config.meta.objective = "a2c"
    config.meta.advantage_normalization = "center"
    with pytest.raises(UserError, match="meta.advantage_normalization applies"):
        rl_training.train(config, tmp_path, log=quiet)


def test_meta_beta1_and_normalization_reach_the_learner():
    config = tiny_mgrl_config()
    config.meta.beta1 = 0.99
    config.meta.beta2 = 0.9
    config.meta.advantage_normalization = "standardize"
    config.meta.condition_on = "agent"
    learner = rl_training.build_learner(config)
    assert learner.meta_optimizer.rule.beta1 == 0.99
    assert learner.meta_optimizer.rule.beta2 == 0.9
    assert learner.condition_on == "agent"
    assert learner.advantage_normalization == "standardize"


def test_embedding_input_reaches_the_agent_and_reset_moves_its_origin():
    config = tiny_mgrl_config()
    config.agent.embedding_input = "eta_change"
    learner = rl_training.build_learner(config, init_eta=(0.9, 0.8))
    assert learner.agent.embedding_input == "eta_change"
    np.testing.assert_allclose(learner.agent.eta_start.numpy(), [0.9, 0.8], rtol=1e-6)
    learner.reset(3, (0.5, 0.95))
    np.testing.assert_allclose(learner.agent.eta_start.numpy(), [0.5, 0.95], rtol=1e-6)
    assert rl_training.build_learner(tiny_mgrl_config()).agent.embedding_input == "eta"


def test_validate_dispatches_on_the_learner():
    config = tiny_mgrl_config()
    experiments.validate(config)  # no l2l sections (rule, meta.unroll_length) needed
    config.meta.learning_rate = -1.0
    with pytest.raises(UserError, match="meta.learning_rate"):
        experiments.validate(config)


TINY_CLI = [
    "--config.env.num_envs=2",
    "--config.agent.rollout_length=3",
    "--config.agent.hidden_sizes=(3,)",
    "--config.train.num_meta_iterations=2",
    "--config.train.log_every=1",
]


@pytest.mark.slow  # two processes, each compiling the agent
def test_cli_train_then_evaluate(tmp_path):
    workdir = tmp_path / "run"
    proc = run(
        "train_optimizer.py",
        "--config=configs/mgrl_cartpole.py:quick",
        f"--workdir={workdir}",
        *TINY_CLI,
    )
    assert proc.returncode == 0, proc.stderr
    assert "iter 2/2" in proc.stdout
    proc = run(
        "evaluate.py",
        f"--workdir={workdir}",
        "--config.eval.num_seeds=1",
        "--config.eval.num_meta_iterations=2",
        "--config.eval.log_every=1",
    )
    assert proc.returncode == 0, proc.stderr
    assert "| meta-learned |" in proc.stdout
    assert json.loads((workdir / "eval" / "results.json").read_text())["env"] == "cartpole"


# Each case starts a Python process that imports TensorFlow; one runs by default.
@pytest.mark.parametrize(
    "script,args,message",
    [
        pytest.param(
            "train_optimizer.py",
            ["--config=configs/mgrl_cartpole.py", "--config.meta.init_lambda=0"],
            "meta.init_lambda must be a number in (0, 1)",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            "train_optimizer.py",
            ["--config=configs/mgrl_cartpole.py", "--config.env.name=pong"],
            "unknown environment 'pong'",
            marks=pytest.mark.slow,
        ),
        (
            "evaluate.py",
            ["--config=configs/mgrl_cartpole.py", "--num_tasks=3"],
            "--num_tasks does not apply to MGRL runs",
        ),
    ],
)
def test_cli_bad_input_is_one_line(tmp_path, script, args, message):
    proc = run(
        script,
        *args,
        f"--workdir={tmp_path / 'w'}"
        if script != "evaluate.py"
        else f"--output_dir={tmp_path / 'o'}",
    )
    assert proc.returncode == 2
    assert error_line(proc).startswith(f"error: {message}")


def test_tuning_driver_scores_equal_evaluate(tmp_path):
    """scripts/mgrl_tune.py's per-seed scores are evaluate.py's for the same seeds."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "mgrl_tune", Path(__file__).resolve().parents[1] / "scripts" / "mgrl_tune.py"
    )
    tune = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tune)
    small = {
        "meta.jit_compile": False,
        "env.num_envs": 2,
        "agent.rollout_length": 3,
        "agent.hidden_sizes": (3,),
        "agent.embedding_size": 2,
        "eval.log_every": 1,
        "eval.final_fraction": 0.5,
    }
    scores = tune.run_setting(small, seeds=[2000, 2001], iterations=20, tag="test")
    from configs import mgrl_cartpole

    config = mgrl_cartpole.get_config()
    for key, value in small.items():
        section, field = key.split(".")
        config[section][field] = value
    config.eval.fixed_grid = False
    config.eval.num_seeds = 2
    config.eval.num_meta_iterations = 20
    results = mgrl_evaluation.evaluate(config, output_dir=tmp_path, seed=2000, log=quiet)
    expected = results["runs"]["meta-learned"]["final_return"]["per_seed"]
    assert np.all(np.isfinite(scores)) and scores[0] != scores[1]
    np.testing.assert_allclose(scores, expected)


def test_seed_table_scores_subsets_as_evaluate_does(tmp_path):
    """scripts/mgrl_seed_table.py: all seeds give summary.md's means, a subset its own seeds'."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "mgrl_seed_table", Path(__file__).resolve().parents[1] / "scripts" / "mgrl_seed_table.py"
    )
    table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(table)
    config = tiny_mgrl_config()
    config.eval.num_seeds = 3
    mgrl_evaluation.evaluate(config, output_dir=tmp_path, seed=1000, log=quiet)
    results = json.loads((tmp_path / "results.json").read_text())
    for name, setting in results["runs"].items():
        per_seed = setting["final_return"]["per_seed"]
        full = next(r for r in table.seed_table(results).splitlines() if r.startswith(f"| {name} "))
        assert f"| {setting['final_return']['mean']:.1f} ± " in full
        assert ", ".join(f"{v:.1f}" for v in per_seed) in full
        lines = table.seed_table(results, 1001, 1002).splitlines()
        part = next(r for r in lines if r.startswith(f"| {name} "))
        assert f"| {np.mean(per_seed[1:]):.1f} ± " in part
        assert ", ".join(f"{v:.1f}" for v in per_seed[1:]) + " |" in part
    assert table.seed_table(results, 1001, 1002).startswith("seeds 1001 … 1002 (2)")
    with pytest.raises(SystemExit):
        table.seed_table(results, 5000, 5001)
