"""The paper's figures and the markdown table are assembled from results folders."""

import json

from l2l_tf.reporting import figures as plotting


def fake_results(problem, num_steps, final, test=False):
    optimizers = {}
    for i, name in enumerate(plotting.OPTIMIZERS):
        value = final + i * 0.1
        r = {
            "learning_rate": None if name == "learned" else 0.01,
            "final_loss_mean": value,
            "final_loss_sem": 0.01,
            "final_loss_median": value,
            "curve_mean": [2.3] + [value] * num_steps,
            "diverged": 0,
        }
        if test:
            r.update(test_loss_mean=value + 0.05, test_loss_sem=0.01)
            r.update(test_accuracy_mean=0.9 - i * 0.01, test_accuracy_sem=0.002)
        optimizers[name] = r
    return {"problem": problem, "num_tasks": 100, "num_steps": num_steps, "optimizers": optimizers}


def write(runs, folder, results):
    (runs / folder).mkdir(parents=True)
    (runs / folder / "results.json").write_text(json.dumps(results))


def test_make_figures_writes_every_figure_and_the_table(tmp_path):
    runs = tmp_path / "runs"
    write(runs, "quadratic/eval", fake_results("quadratic", 100, 0.5))
    write(runs, "mnist/eval", fake_results("mnist", 100, 0.3, test=True))
    write(runs, "mnist/eval_longer", fake_results("mnist", 200, 0.2, test=True))
    write(runs, "mnist/eval_40hidden", fake_results("mnist", 100, 0.25, test=True))
    write(runs, "mnist/eval_2layers", fake_results("mnist", 100, 0.35, test=True))
    relu = fake_results("mnist", 100, 0.4, test=True)
    relu["optimizers"]["learned"]["final_loss_mean"] = 3.0  # the learned rule loses
    write(runs, "mnist/eval_relu", relu)
    written = plotting.make_figures(runs, tmp_path / "results", log=lambda _: None)
    assert set(written) == {
        "quadratic.png",
        "mnist.png",
        "mnist_generalization.png",
        "results.md",
    }
    for name in ("quadratic.png", "mnist.png", "mnist_generalization.png"):
        assert (tmp_path / "results" / name).read_bytes()[:4] == b"\x89PNG"
    table = (tmp_path / "results" / "results.md").read_text()
    assert "| MNIST, 200 steps (fig. 5) | 100 × 200 | **0.2 ± 0.01** |" in table
    assert "| MNIST, ReLU (fig. 5) | 100 × 100 | 3 ± 0.01 | **0.5 ± 0.01 [0.01]** |" in table
    assert "Held-out test loss / test accuracy" in table and "0.35 / 0.900" in table
    assert "| Quadratics (fig. 2) |" in table.split("Held-out")[0]
    assert "| Quadratics (fig. 2) |" not in table.split("Held-out")[1]


def test_missing_results_are_left_out(tmp_path):
    runs = tmp_path / "runs"
    write(runs, "mnist/eval", fake_results("mnist", 100, 0.3, test=True))
    notes = []
    written = plotting.make_figures(runs, tmp_path / "out", log=notes.append)
    assert set(written) == {"mnist.png", "results.md"}
    assert len(notes) == 5 and all("not found" in n for n in notes)
    assert plotting.make_figures(tmp_path / "empty", tmp_path / "out2", log=notes.append) == {}
