"""``python -m gan_lightning.data dataset=fashion_mnist``: make a data set available locally and say where it is.

Uses a copy that is already there; otherwise installs Debian's package where apt is available and the
user is root (containers, CI); otherwise downloads into the user cache.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from gan_lightning.commands import Command, Setting, main_guard
from gan_lightning.data.idx import SOURCES, DataFinder
from gan_lightning.errors import UserError, require_choice


def fetch(dataset: str, root: str | None = None) -> int:
    if root and Path(root).expanduser().exists() and not Path(root).expanduser().is_dir():
        raise UserError(f"root={root!r} is a file: give the folder that holds (or is to hold) the data set's files.")
    finder = DataFinder(dataset, root)
    folder = finder.find("train")
    if folder is not None:
        print(f"{finder.source.title}: found in {folder}")
        return 0
    package = finder.source.debian_package
    if package and shutil.which("apt-get") and os.geteuid() == 0:
        print(f"{finder.source.title}: installing Debian's package {package} ...", flush=True)
        if subprocess.run(["apt-get", "install", "-y", "-q", package], stdout=subprocess.DEVNULL).returncode == 0:
            folder = DataFinder(dataset, root).find("train")
            if folder is not None:
                print(f"{finder.source.title}: installed in {folder}")
                return 0
        print(f"{finder.source.title}: apt-get install {package} failed; trying a download", file=sys.stderr)
    try:
        folder = finder.download()
    except OSError as error:
        raise finder.not_found("train", f"the download failed ({error})") from None
    print(f"{finder.source.title}: downloaded to {folder}")
    return 0


COMMAND = Command(
    "gan_lightning.data",
    __doc__.strip(),
    [
        Setting("dataset", f"one of {', '.join(sorted(SOURCES))}"),
        Setting("root", "a folder to look in first (as data.root)", None),
    ],
)


def main(argv=None) -> int:
    own, _ = COMMAND.parse(sys.argv[1:] if argv is None else argv)
    require_choice("dataset", own["dataset"], sorted(SOURCES))
    return fetch(own["dataset"], own["root"])


if __name__ == "__main__":
    main_guard(main)
