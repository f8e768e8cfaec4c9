"""Time per training step of the two ways to synchronise a GAN under DDP (docs/scaling.md).

    python scripts/bench_ddp.py [--repeats 3] [--setups ring8/mlp fashion_mnist/dcgan]

Runs ``python -m gan_lightning.run`` with ``trainer=ddp_cpu`` (2 CPU processes, gloo) and
``trainer.strategy`` = ``gan_ddp`` (G and D in separate DDP wrappers) or ``gan_ddp_find_unused``
(one DDP over the module, find_unused_parameters=True), plus one process for reference, on ring8/mlp
and a DCGAN on Fashion-MNIST. The time per step is taken between two progress lines, after warm-up.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime

SETUPS = {
    "ring8/mlp": (
        ["data=ring8", "model=mlp", "trainer.max_steps=600", "callbacks.progress_every_n_steps=200"],
        200,
        600,
    ),
    "fashion_mnist/dcgan": (
        [
            "data=fashion_mnist",
            "data.limit=4096",
            "model=dcgan",
            "trainer.max_steps=90",
            "callbacks.progress_every_n_steps=30",
        ],
        30,
        90,
    ),
}
ENGINES = {
    "1 process": ["trainer=default", "trainer.accelerator=cpu"],
    "gan_ddp": ["trainer=ddp_cpu", "trainer.strategy=gan_ddp"],
    "gan_ddp_find_unused": ["trainer=ddp_cpu", "trainer.strategy=gan_ddp_find_unused"],
}
LINE = re.compile(r"^\[(?P<time>[\d\- :,]+)\]\[gan_lightning\]\[INFO\] - step (?P<step>\d+)/")


def ms_per_step(args: list, first: int, last: int) -> float:
    with tempfile.TemporaryDirectory() as run_dir:
        command = [
            sys.executable,
            "-m",
            "gan_lightning.run",
            *args,
            "logger=none",
            "callbacks.samples_every_n_steps=0",
            "callbacks.checkpoint_every_n_steps=0",
            f"hydra.run.dir={run_dir}",
        ]
        output = subprocess.run(
            command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, check=True
        ).stderr
    times = {}
    for line in output.splitlines():
        match = LINE.match(line)
        if match:
            times[int(match["step"])] = datetime.strptime(match["time"], "%Y-%m-%d %H:%M:%S,%f")
    return (times[last] - times[first]).total_seconds() * 1000 / (last - first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--setups", nargs="+", choices=sorted(SETUPS), default=list(SETUPS))
    options = parser.parse_args()
    repeats = options.repeats
    for setup in options.setups:
        args, first, last = SETUPS[setup]
        results = {engine: [] for engine in ENGINES}
        for _ in range(repeats):  # interleaved, so a slow spell of the machine hits every engine alike
            for engine, engine_args in ENGINES.items():
                results[engine].append(ms_per_step(args + engine_args, first, last))
        for engine, values in results.items():
            # The minimum is the least disturbed run: other load on the machine only ever adds time.
            print(
                f"{setup:22s} {engine:20s} min {min(values):7.2f}  median {statistics.median(values):7.2f} ms/step  (runs: {', '.join(f'{v:.2f}' for v in values)})",
                flush=True,
            )


if __name__ == "__main__":
    main()
