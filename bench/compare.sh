#!/usr/bin/env bash
# Runs l2l_tf, its eager mode, and the PyTorch and JAX peers alternately; prints median ratios.
# Needs the bench extra: pip install -e ".[bench]". Options are passed to bench/compare.py
# (--rounds, --unrolls, --threads, --modes, --peers).
set -euo pipefail
cd "$(dirname "$0")/.."
exec python bench/compare.py "$@"
