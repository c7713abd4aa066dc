"""One results page for every experiment family, assembled from the results files.

`results_page` (written as OUT/results.md by `make_figures.py`) has one section per family:
the learned optimizer on quadratics and MNIST (the paper's table), the generalist on its
held-out suite, the MAML family on sinusoids and on few-shot episodes, and meta-gradient RL on
CartPole and the chain world. Each section is built from the family's results files in the runs
folder, found either where `runall.sh` puts them (`RUNS/NAME/eval/`, `RUNS/generalist/suite/`)
or where the committed results keep them (`results/NAME/`), so `make_figures.py
--runs_dir=results --output_dir=results` rebuilds the committed page from the committed files.
A family with no results files there gets the headline table of its docs page instead
(`docs/results/*.md`), marked as such, so the page never silently leaves a family out.
"""

import json
import os
from pathlib import Path

from l2l_tf.reporting import adaptation

#: The MAML-family learners, in the order of the tables.
INIT_LEARNERS = ("maml", "fomaml", "reptile", "metasgd", "imaml")

#: The docs folder of this checkout (its results pages are the fallback of a family).
DOCS_DIR = Path(__file__).resolve().parents[2] / "docs"


def find_results(runs_dir, name: str, filename: str = "results.json", eval_dir: str = "eval"):
    """RUNS/NAME/EVAL/FILENAME (a runall.sh run) or RUNS/NAME/FILENAME (committed); or None."""
    for path in (Path(runs_dir) / name / eval_dir / filename, Path(runs_dir) / name / filename):
        if path.is_file():
            return path
    return None


def docs_table(page: Path, heading: str) -> str | None:
    """The first markdown table after the line starting with `heading` in `page`, or None."""
    if not page.is_file():
        return None
    lines = page.read_text().splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(heading)), None)
    if start is None:
        return None
    table, in_code = [], False
    for line in lines[start + 1 :]:
        if line.startswith("```"):
            in_code = not in_code
        elif in_code:
            continue
        elif line.startswith("|"):
            table.append(line)
        elif table or line.startswith("## "):
            break
    return "\n".join(table) or None


def adaptation_table(results: dict) -> str:
    """Compact table of an initialization learner's evaluation: steps 0, 1 and the last."""
    methods = results["methods"]
    steps = len(next(iter(methods.values()))["per_step_mean"])
    shown = sorted({0, min(1, steps - 1), steps - 1})
    head = "| method | " + " | ".join(f"step {t}" for t in shown) + " | diverged |"
    lines = [head, "|---" * (len(shown) + 2) + "|"]
    for name, r in methods.items():
        cells = [f"{r['per_step_mean'][t]:.3f} ± {r['per_step_ci95'][t]:.3f}" for t in shown]
        lines.append(f"| `{name}` | " + " | ".join(cells) + f" | {r['diverged']} |")
    return "\n".join(lines)


def _init_family(runs_dir, suffix: str):
    """(table, sources) of the MAML-family runs RUNS/LEARNER_SUFFIX, or (None, [])."""
    found, sources = [], []
    for learner in INIT_LEARNERS:
        path = find_results(runs_dir, f"{learner}_{suffix}")
        if path is not None:
            found.append((learner, json.loads(path.read_text())))
            sources.append(path)
    if not found:
        return None, []
    results = adaptation.combine_results(found)
    metric = results["metric"]
    caption = f"{metric}, mean ± 95% CI over {results['num_tasks']} test tasks, after t steps:"
    return caption + "\n\n" + adaptation_table(results), sources


def _summary_file(runs_dir, name: str, eval_dir: str = "eval"):
    path = find_results(runs_dir, name, "summary.md", eval_dir)
    if path is None:
        return None, []
    table = "\n".join(line for line in path.read_text().splitlines() if line.startswith("|"))
    return table or None, [path]


def _first_summary(runs_dir, *names):
    """`_summary_file` of the first of `names` with results (runall.sh's run folder, then the
    committed results' one)."""
    for name in names:
        table, sources = _summary_file(runs_dir, name)
        if table is not None:
            return table, sources
    return None, []


#: The families after the paper's: (title, what the numbers are, how to read their results
#: files from a runs folder, their docs page and the heading of its headline table).
FAMILIES = (
    (
        "Generalist: the shipped optimizer on the held-out suite",
        "final training loss per task, the learned rule untuned against baselines tuned per task",
        lambda runs: _summary_file(runs, "generalist", eval_dir="suite"),
        "generalist.md",
        "## Held-out suite",
    ),
    (
        "MAML family on sinusoids",
        "query MSE after adaptation",
        lambda runs: _init_family(runs, "sinusoid"),
        "results/sinusoid.md",
        "## Results",
    ),
    (
        "MAML family on few-shot classification",
        "query accuracy after adaptation",
        lambda runs: _init_family(runs, "fewshot"),
        "results/fewshot.md",
        "## Results",
    ),
    (
        "Learned synaptic rule on random boolean functions",
        "final training loss, the learned rule against baselines tuned on validation tasks",
        lambda runs: _first_summary(runs, "synaptic_boolean", "synaptic/boolean"),
        "results/synaptic.md",
        "## Results",
    ),
    (
        "Learned synaptic rule on the MNIST MLP",
        "final training loss, then test loss and accuracy",
        lambda runs: _first_summary(runs, "synaptic_mnist", "synaptic/mnist"),
        "results/synaptic.md",
        "## MNIST",
    ),
    (
        "Meta-gradient RL on CartPole",
        "episode return, the meta-learned (gamma, lambda) against the fixed grid",
        lambda runs: _summary_file(runs, "mgrl_cartpole"),
        "results/mgrl.md",
        "## Result on the evaluation seeds",
    ),
    (
        "Meta-gradient RL on the chain world",
        "episode return on a chain with a near distractor reward",
        lambda runs: _summary_file(runs, "mgrl_chain"),
        "results/mgrl.md",
        "## Chain world",
    ),
)


def has_results(runs_dir) -> bool:
    """Whether `runs_dir` holds the results files of any family after the paper's."""
    return any(load(Path(runs_dir))[0] is not None for _, _, load, _, _ in FAMILIES)


def results_page(
    runs_dir, paper_table: str | None, paper_sources=(), docs_dir=DOCS_DIR, link_from="results"
) -> str:
    """The markdown of the one results page (see the module docstring).

    Args:
      runs_dir: the runs folder of runall.sh, or the committed results folder.
      paper_table: `figures.results_markdown` of the quadratic and MNIST results found, or None.
      paper_sources: the results.json files `paper_table` was made from.
      docs_dir: where the docs pages are, for the families without results files.
      link_from: the folder the page is written into, for relative links to the docs.
    """
    docs_dir = Path(docs_dir)
    runs_dir = Path(runs_dir)
    out = [
        "# Results of every experiment family",
        "",
        f"Generated by `make_figures.py --runs_dir={runs_dir}` from the results files; each "
        "section names its source, and the family's page in docs/results/ has the commands, "
        "the full tables and what they show.",
        "",
        "## Learned optimizer: quadratics and MNIST (paper sections 3.1 and 3.2)",
        "",
    ]
    if paper_table:
        folders = sorted({str(Path(p).parent) for p in paper_sources})
        out += [paper_table.rstrip(), ""]
        if folders:
            out.append("Source: " + ", ".join(f"`{f}/results.json`" for f in folders) + ".")
    else:
        out.append(f"No quadratic or MNIST results under `{runs_dir}`; see docs/results/.")
    for title, what, load, page, heading in FAMILIES:
        out += ["", f"## {title}", "", f"{what[0].upper()}{what[1:]}.", ""]
        table, sources = load(runs_dir)
        if table is not None:
            out += [table, "", "Source: " + ", ".join(f"`{p}`" for p in sources) + "."]
            continue
        quoted = docs_table(docs_dir / page, heading)
        if quoted is None:
            out.append(f"No results files under `{runs_dir}` and no table in docs/{page}.")
        else:
            link = os.path.relpath(docs_dir / page, Path(link_from).resolve())
            out += [
                quoted,
                "",
                f"Quoted from [docs/{page}]({link}) (its results files are not under "
                f"`{runs_dir}`).",
            ]
    return "\n".join(out) + "\n"
