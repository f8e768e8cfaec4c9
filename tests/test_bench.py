"""The benchmark command runs both loops and writes what it measured (its numbers are read, not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO


def test_bench_compares_the_framework_with_the_plain_loop(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "gan_lightning.bench", "--cases", "mlp_ring8_small", "--rounds", "2", "--warmup", "3", "--steps", "10",
         "--out", str(out), "--workdir", str(tmp_path / "runs")],  # fmt: skip
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    results = json.loads(out.read_text())
    (case,) = results["cases"]
    assert case["case"] == "mlp_ring8_small" and len(case["framework_steps_per_s"]["rounds"]) == 2 == len(case["plain_steps_per_s"]["rounds"])
    assert case["ratio_median"] > 0 and results["machine"]["threads"] == 1
    assert "mlp_ring8_small" in result.stdout and "ratio" in result.stdout
