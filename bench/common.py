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


def throughput_line(
    problem, impl, mode, coords, unroll_length, threads, unrolls, elapsed, compile_s
) -> str:
    """The meta-training BENCH line of bench/meta_train.py and the peers, alike: `unrolls`
    meta-steps of `unroll_length` optimizee steps took `elapsed` seconds (threads 0: all)."""
    return bench_line(
        problem=problem,
        impl=impl,
        mode=mode,
        coords=coords,
        unroll_length=unroll_length,
        threads=threads or "all",
        unrolls_per_s=unrolls / elapsed,
        optimizee_steps_per_s=unrolls * unroll_length / elapsed,
        compile_s=compile_s,
        peak_rss_mb=peak_rss_mb(),
    )


def usage_error(message: str) -> None:
    """Bad input: one `error: ...` line on stderr and exit status 2, as the mains do."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def peer_args(description: str, extra=None) -> argparse.Namespace:
    """The flags every peer in bench/peers/ takes (bench/compare.py passes them alike);
    `extra(parser)` may add a peer's own."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--unrolls", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--check", help="reference .npz written by bench/meta_train.py --dump")
    parser.add_argument("--problem", choices=["quadratic", "mnist"], default="quadratic")
    parser.add_argument(
        "--data", help="mnist: an .npz with x_train and y_train (bench/meta_train.py --dump)"
    )
    if extra is not None:
        extra(parser)
    return parser.parse_args()
