"""Helpers shared by the benchmarks: the BENCH line, peak memory, the peers' flags."""

import argparse
import resource
import sys


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench_line(**fields) -> str:
    """Prints and returns one machine-readable line: `BENCH key=value ...`."""
    parts = []
    for key, value in fields.items():
        parts.append(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}")
    line = "BENCH " + " ".join(parts)
    print(line, flush=True)
    sys.stdout.flush()
    return line


def peer_args(description: str) -> argparse.Namespace:
    """The flags every peer in bench/peers/ takes (bench/compare.py passes them alike)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--unrolls", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--check", help="reference .npz written by bench/meta_train.py --dump")
    return parser.parse_args()
