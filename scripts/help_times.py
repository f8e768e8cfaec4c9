"""How long each command takes to answer ``--help`` in a new process: the median of 5 runs (and the range), beside
the 2 s a command should answer in. Run from the repository root: ``.venv/bin/python scripts/help_times.py``."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

COMMANDS = ("run", "evaluate", "sample", "report", "compare", "bench", "data", "extractor")
RUNS = 5
LIMIT_S = 2.0


def seconds(command: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", f"gan_lightning.{command}", "--help"], check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> int:
    print(f"{'command':10} {'median s':>9} {'range s':>13}  (of {RUNS} runs; limit {LIMIT_S} s)")
    slow = []
    for command in COMMANDS:
        times = [seconds(command) for _ in range(RUNS)]
        median = statistics.median(times)
        print(
            f"{command:10} {median:9.2f} {min(times):6.2f}-{max(times):<6.2f} {'over the limit' if median > LIMIT_S else ''}"
        )
        if median > LIMIT_S:
            slow.append(command)
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
