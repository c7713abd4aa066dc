#!/usr/bin/env python
"""Meta-training throughput on 1 and 2 replicas of this machine: one BENCH line each.

    python bench/distributed.py [--config=configs/quadratic.py] [--unrolls=40]

Each replica count runs in its own process (logical devices must be configured before
TensorFlow starts): 1 replica is `distribute=none`; 2 replicas is `distribute=mirrored` over two
logical CPU devices (or all GPUs, on a machine with two or more). Each process meta-trains with
`l2l_training.train` for 2 x --unrolls meta-iterations; the figure is the trainer's own
`unrolls_per_s` over the second half, so tracing and validation are left out. Meta-parameters
follow the same trajectory in both runs, so unrolls per second compare like with like.
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure(config_arg: str, replicas: int, unrolls: int) -> dict:
    """Runs in the child process: meta-trains and returns the trainer's throughput."""
    import tensorflow as tf
    from ml_collections import config_flags  # noqa: F401  (registers ConfigDict parsing)

    gpus = tf.config.list_physical_devices("GPU")
    if replicas > 1 and len(gpus) < replicas:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(replicas)]
        )
    import importlib.util

    from l2l_tf.experiments.l2l import training as l2l_training

    path, _, variant = config_arg.partition(":")
    spec = importlib.util.spec_from_file_location("bench_config", ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config(variant)
    config.distribute = "mirrored" if replicas > 1 else "none"
    config.train.num_meta_iterations = 2 * unrolls
    config.train.log_every = unrolls
    config.train.eval_every = config.train.checkpoint_every = 2 * unrolls
    config.train.num_val_tasks = 8
    with tempfile.TemporaryDirectory() as workdir:
        l2l_training.train(config, workdir, log=lambda line: None)
        records = [json.loads(line) for line in (Path(workdir) / "metrics.jsonl").open()]
    rate = [r["unrolls_per_s"] for r in records if "unrolls_per_s" in r][-1]
    return {
        "replicas": replicas,
        "distribute": config.distribute,
        "devices": f"{len(gpus)} gpu" if len(gpus) >= replicas > 1 else "cpu",
        "unrolls_per_s": rate,
        "optimizee_steps_per_s": rate * config.meta.unroll_length,
        "members": config.problem.batch_size,
        "unroll_length": config.meta.unroll_length,
    }


def main() -> None:
    args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
    config_arg = args.get("config", "configs/quadratic.py")
    unrolls = int(args.get("unrolls", 40))
    if "child" in args:
        print(json.dumps(measure(config_arg, int(args["child"]), unrolls)))
        return
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    for replicas in (1, 2):
        out = subprocess.run(
            [sys.executable, __file__, f"--child={replicas}", f"--config={config_arg}"]
            + [f"--unrolls={unrolls}"],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        ).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(
            f"BENCH distributed_meta_training config={config_arg} replicas={r['replicas']} "
            f"distribute={r['distribute']} devices={r['devices']} members={r['members']} "
            f"unroll_length={r['unroll_length']} unrolls_per_s={r['unrolls_per_s']:.2f} "
            f"optimizee_steps_per_s={r['optimizee_steps_per_s']:.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
