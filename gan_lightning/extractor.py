"""``python -m gan_lightning.extractor data=fashion_mnist``: build the domain feature extractor of a data set.

Trains a small classifier on the training split, reports its test accuracy and stores it in the cache
(``~/.cache/gan_lightning/extractors/``), where image metrics with ``metrics.features=domain`` find it. An
extractor already in the cache is kept (``force=true`` trains it again); a build in progress elsewhere is waited for.
"""

from __future__ import annotations

import sys

from gan_lightning.commands import Command, Setting, boolean, main_guard
from gan_lightning.config import compose, to_config


COMMAND = Command(
    "gan_lightning.extractor",
    __doc__.strip(),
    [Setting("force", "train it again even when the cache holds one", False, boolean)],
    overrides="the data set and its settings, as for a run: data=fashion_mnist, data.root=DIR",
)


def main(argv=None) -> int:
    own, overrides = COMMAND.parse(sys.argv[1:] if argv is None else argv)
    cfg = to_config(compose(["model=mlp", "metrics=none", *overrides]))  # the MLP fits any data: only the data settings matter here
    cfg.data.check()
    import torch

    from gan_lightning.metrics.domain import ensure_domain_extractor

    path = ensure_domain_extractor(cfg.data, force=own["force"])
    record = torch.load(path, map_location="cpu", weights_only=True)
    print(f"{cfg.data.cache_key}: test accuracy {record['test_accuracy']:.4f} ({path})")
    return 0


if __name__ == "__main__":
    main_guard(main)
