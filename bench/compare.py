#!/usr/bin/env python
"""Runs l2l_tf and its peers alternately on the quadratic meta-training step; prints ratios.

    python bench/compare.py [--rounds=5] [--unrolls=100] [--threads=0] [--modes=graph,eager]

First every implementation computes one unroll from the same inputs (bench/meta_train.py
--dump) and the meta-losses and meta-gradient norms must agree (relative 1e-4), so the timed
work is the same. Then the implementations run in alternation, A B C D A B C D ..., each in a
fresh process, so that a slow spell of the machine hits all of them alike; the medians of the
unrolls/s and their ratios are printed, and one BENCH line per run goes to stdout.
"""

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEERS = {"torch": "bench/peers/torch_l2l.py", "jax": "bench/peers/jax_l2l.py"}


def run(cmd):
    proc = subprocess.run([sys.executable, *cmd], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"error: {' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return proc.stdout


def fields(line):
    return dict(re.findall(r"(\w+)=(\S+)", line))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--unrolls", type=int, default=100)
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="threads for every implementation (0: each one's default)",
    )
    parser.add_argument(
        "--modes",
        default="graph,eager",
        help="l2l_tf modes to run: graph, xla, static, eager (comma-separated)",
    )
    parser.add_argument("--peers", default="torch,jax")
    args = parser.parse_args()
    peers = [p for p in args.peers.split(",") if p]

    with tempfile.TemporaryDirectory() as tmp:
        ref = str(Path(tmp) / "ref.npz")
        checks = [fields(run(["bench/meta_train.py", f"--dump={ref}"]).strip().splitlines()[-1])]
        for peer in peers:
            checks.append(fields(run([PEERS[peer], f"--check={ref}"]).strip().splitlines()[-1]))
    base = checks[0]
    for c in checks:
        print(f"CHECK impl={c['impl']} meta_loss={c['meta_loss']} grad_norm={c['grad_norm']}")
        for key in ("meta_loss", "grad_norm"):
            a, b = float(c[key]), float(base[key])
            if abs(a - b) > 1e-4 * abs(b):
                sys.exit(f"error: {c['impl']} {key} {a} differs from l2l_tf's {b}")
    print("CHECK all implementations compute the same meta-loss and meta-gradient norm")

    mode_flags = {"graph": [], "xla": ["--jit=on"], "static": ["--static=on"], "eager": ["--eager"]}
    contenders = {}
    for mode in args.modes.split(","):
        unrolls = max(args.unrolls // 10, 5) if mode == "eager" else args.unrolls
        contenders[f"l2l_tf:{mode}"] = [
            "bench/meta_train.py",
            f"--unrolls={unrolls}",
            f"--threads={args.threads}",
            *mode_flags[mode],
        ]
    for peer in peers:
        contenders[peer] = [PEERS[peer], f"--unrolls={args.unrolls}", f"--threads={args.threads}"]
    rates = {name: [] for name in contenders}
    for r in range(args.rounds):
        for name, cmd in contenders.items():
            line = [x for x in run(cmd).splitlines() if x.startswith("BENCH")][-1]
            print(f"{line} round={r}", flush=True)
            rates[name].append(float(fields(line)["unrolls_per_s"]))
    medians = {name: statistics.median(v) for name, v in rates.items()}
    print("\n| implementation | median unrolls/s | runs |")
    print("|---|---|---|")
    for name, m in medians.items():
        print(f"| {name} | {m:.3g} | {', '.join(f'{v:.3g}' for v in rates[name])} |")
    ours = medians.get("l2l_tf:graph") or next(iter(medians.values()))
    for name, m in medians.items():
        if name != "l2l_tf:graph":
            print(f"RATIO l2l_tf:graph/{name} = {ours / m:.2f}")


if __name__ == "__main__":
    main()
