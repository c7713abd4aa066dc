#!/usr/bin/env python
"""Runs l2l_tf and its peers alternately on a meta-training step; prints ratios.

    python bench/compare.py [--problem=quadratic|mnist] [--rounds=5] [--unrolls=100]
        [--threads=1,0] [--modes=graph,eager] [--peers=torch,jax]

First every implementation computes one unroll from the same inputs (bench/meta_train.py
--dump) and the meta-losses and meta-gradient norms must agree (relative 1e-4), so the timed
work is the same. Then the implementations run in alternation, A B C D A B C D ..., each in a
fresh process, so that a slow spell of the machine hits all of them alike; the medians of the
unrolls/s and their ratios are printed, and one BENCH line per run goes to stdout.

Thread counts matter on a small problem: each implementation runs at every setting of
`--threads` (1: one intra-op thread; 0: the library's default, all cores) as its own contender,
and the ratios compare each implementation at its fastest setting (best against best), so no
implementation is judged at a setting that handicaps it.
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
    parser.add_argument("--problem", choices=["quadratic", "mnist"], default="quadratic")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--unrolls", type=int, default=100)
    parser.add_argument(
        "--threads",
        default="1,0",
        help="intra-op thread counts to run every implementation at, comma-separated "
        "(0: each library's default, all cores); ratios take each one's fastest",
    )
    parser.add_argument(
        "--modes",
        default="graph,eager",
        help="l2l_tf modes to run: graph, xla, static, eager (comma-separated)",
    )
    parser.add_argument("--peers", default="torch,jax")
    args = parser.parse_args()
    peers = [p for p in args.peers.split(",") if p]
    try:
        threads = [int(t) for t in args.threads.split(",") if t]
    except ValueError:
        sys.exit(f"error: --threads must be comma-separated integers, got {args.threads!r}")
    if not threads or min(threads) < 0:
        sys.exit(f"error: --threads must be non-negative integers, got {args.threads!r}")

    with tempfile.TemporaryDirectory() as tmp:
        compare(args, peers, threads, str(Path(tmp) / "ref.npz"))


def compare(args, peers, threads, ref):
    problem = f"--problem={args.problem}"
    checks = [
        fields(run(["bench/meta_train.py", problem, f"--dump={ref}"]).strip().splitlines()[-1])
    ]
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
    contenders = {}  # "impl@threads" -> command
    for t in threads:
        tag = f"@{t or 'all'}"
        for mode in args.modes.split(","):
            unrolls = max(args.unrolls // 10, 5) if mode == "eager" else args.unrolls
            contenders[f"l2l_tf:{mode}{tag}"] = [
                "bench/meta_train.py",
                problem,
                f"--unrolls={unrolls}",
                f"--threads={t}",
                *mode_flags[mode],
            ]
        for peer in peers:
            contenders[f"{peer}{tag}"] = [
                PEERS[peer],
                problem,
                f"--data={ref}",
                f"--unrolls={args.unrolls}",
                f"--threads={t}",
            ]
    rates = {name: [] for name in contenders}
    for r in range(args.rounds):
        for name, cmd in contenders.items():
            line = [x for x in run(cmd).splitlines() if x.startswith("BENCH")][-1]
            print(f"{line} round={r}", flush=True)
            rates[name].append(float(fields(line)["unrolls_per_s"]))
    medians = {name: statistics.median(v) for name, v in rates.items()}
    print("\n| implementation @ threads | median unrolls/s | runs |")
    print("|---|---|---|")
    for name, m in medians.items():
        print(f"| {name} | {m:.3g} | {', '.join(f'{v:.3g}' for v in rates[name])} |")
    best = {}  # implementation -> (median, thread setting) at its fastest setting
    for name, m in medians.items():
        impl, tag = name.split("@")
        if impl not in best or m > best[impl][0]:
            best[impl] = (m, tag)
    print()
    for impl, (m, tag) in best.items():
        print(f"BEST {impl} threads={tag} unrolls_per_s={m:.4g}")
    ours = "l2l_tf:graph" if "l2l_tf:graph" in best else next(iter(best))
    for impl, (m, _) in best.items():
        if impl != ours:
            print(f"RATIO {ours}/{impl} = {best[ours][0] / m:.2f}")


if __name__ == "__main__":
    main()
