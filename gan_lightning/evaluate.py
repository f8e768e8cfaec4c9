"""``python -m gan_lightning.evaluate``: sample-quality metrics of checkpoints, each with its protocol.

    python -m gan_lightning.evaluate ckpt=PATH                      # one checkpoint: JSON on stdout
    python -m gan_lightning.evaluate runs=multirun/2026-11-25/14-02-11   # every kept checkpoint of every run
    python -m gan_lightning.evaluate runs=RUN_DIR,RUN_DIR out=DIR metrics.final_num_samples=5000

The model and data come from each checkpoint; the metrics default to the run's own final protocol (the kind it
measured, with its settings and final number of samples), so the scores match its ``summary.json``; for a run that
measured none, the kind ``metrics=auto`` chooses for the data (``image`` for images, ``toy2d`` for 2-D mixtures,
``toy1d`` for gaussian1d) with that kind's own settings.
``metrics=parzen`` gives the Parzen-window log-likelihood of Goodfellow et al. 2014.

``runs=`` takes run directories and sweep directories (every run in them) and scores each run's kept checkpoints
(``checkpoints/step_<N>.ckpt``, and ``best.ckpt`` and ``last.ckpt`` where they hold other steps). Scores are
cached in each run's ``evaluation.json`` under their protocol: a checkpoint already scored under the same protocol
is not scored again (``force=true`` scores it anyway). The results go to ``evaluation.csv``, ``evaluation.md``
and one plot per metric against the step (``evaluation_<metric>.png``) in ``out``; to each run's
``summary.json`` (``evaluation``: the best and last value of each metric with their steps, and the protocol);
and to each run's own W&B run, continued under its id (``evaluation/<metric>`` against ``evaluation/step``).

``processes=N`` splits the generation and feature extraction of every checkpoint over N processes (one per GPU
where there are N GPUs, else CPU processes through gloo); the first gathers the features in sample order, so the
scores equal one process's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from gan_lightning.commands import Command, Setting, boolean, main_guard, whole_number
from gan_lightning.errors import UserError

COMMAND = Command(
    "gan_lightning.evaluate",
    __doc__.strip(),
    [
        Setting("ckpt", "one checkpoint to evaluate (its scores as JSON on stdout)", ""),
        Setting("runs", "comma-separated run or sweep directories: every kept checkpoint of every run", ""),
        Setting(
            "out",
            "where evaluation.csv, evaluation.md and the plots go (runs=); default: the one directory given, else .",
            "",
        ),
        Setting("force", "score checkpoints again that were scored under the same protocol", False, boolean),
        Setting(
            "processes",
            "processes that share generation and feature extraction: one per GPU, or CPU processes (gloo)",
            1,
            whole_number(1),
        ),
    ],
    overrides="metrics=image|toy2d|toy1d|parzen and metrics.KEY=VALUE (the rest of the config comes from the checkpoint)",
)


def main(argv=None) -> int:
    own, overrides = COMMAND.parse(sys.argv[1:] if argv is None else argv)
    if bool(own["ckpt"]) == bool(own["runs"]):
        raise UserError(
            "give ckpt=PATH (one checkpoint) or runs=DIR[,DIR...] (run or sweep directories), not both or neither."
        )
    from gan_lightning.results.scoring import Scoring, evaluate_runs, score

    if own["ckpt"]:
        (result,) = score([Scoring(Path(own["ckpt"]), overrides)], overrides, own["processes"])
        print(json.dumps({**result, "checkpoint": own["ckpt"]}, indent=2))
        return 0
    paths = [Path(p) for p in own["runs"].split(",") if p]
    out = Path(own["out"]) if own["out"] else (paths[0] if len(paths) == 1 else Path("."))
    evaluate_runs(paths, out, overrides, own["force"], own["processes"])
    return 0


if __name__ == "__main__":
    main_guard(main)
