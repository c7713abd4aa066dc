"""Helpers shared by the benchmarks: the BENCH line and peak memory."""

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
