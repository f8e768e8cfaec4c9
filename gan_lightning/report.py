"""``python -m gan_lightning.report dir=DIR``: a report of a run or a multirun from its local files alone.

Writes ``DIR/report.md`` with a table of the runs (overrides, status, steps, wall time, final metrics),
and into ``DIR/report/`` one PNG of loss, D-output and metric curves per run (from ``csv/metrics.csv``)
and one PNG with the last sample grid of every run side by side. No W&B access is needed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from gan_lightning.commands import Command, Setting, main_guard
from gan_lightning.errors import UserError

COMMAND = Command(
    "gan_lightning.report",
    __doc__.strip(),
    [Setting("dir", "a run directory or a multirun sweep directory")],
)


def main(argv=None) -> int:
    own, _ = COMMAND.parse(sys.argv[1:] if argv is None else argv)
    directory = Path(own["dir"])
    if not directory.is_dir():
        raise UserError(f"{directory} is not a directory: give a run directory or a multirun sweep directory.")
    from gan_lightning.results.report import write_report

    print(f"report written to {write_report(directory)}")
    return 0


if __name__ == "__main__":
    main_guard(main)
