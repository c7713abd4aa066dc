#!/usr/bin/env bash
# Trains and evaluates every experiment config in configs/ into runs/NAME/.
#
#   ./runall.sh            the full experiments (the paper's settings; long)
#   ./runall.sh --quick    each config's quick variant: the whole batch in a few minutes
#   ./runall.sh --quick quadratic     only the named configs
#
# Runs resume: an interrupted batch picks up where each run stopped.
set -euo pipefail
cd "$(dirname "$0")"

variant=""
runs_dir="runs"
names=()
for arg in "$@"; do
  case "$arg" in
    --quick) variant=":quick"; runs_dir="runs/quick" ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    -*) echo "error: unknown option $arg (valid: --quick)" >&2; exit 2 ;;
    *) names+=("$arg") ;;
  esac
done
if [ ${#names[@]} -eq 0 ]; then
  for f in configs/*.py; do
    name=$(basename "$f" .py)
    [ "$name" = "__init__" ] || names+=("$name")
  done
fi

export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
for name in "${names[@]}"; do
  [ -f "configs/$name.py" ] || { echo "error: no config configs/$name.py" >&2; exit 2; }
  workdir="$runs_dir/$name"
  echo "=== $name: training into $workdir"
  python train_optimizer.py --config="configs/$name.py$variant" --workdir="$workdir"
  echo "=== $name: evaluating"
  python evaluate.py --workdir="$workdir"
done
echo "done: results in $runs_dir/*/eval/"
