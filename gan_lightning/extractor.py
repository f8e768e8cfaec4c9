"""``python -m gan_lightning.extractor data=fashion_mnist``: the domain feature extractor of a data set.

Names the extractor image metrics with ``metrics.features=domain`` use and its test accuracy: the one that ships
with the project (Fashion-MNIST's), or one built in the cache (``~/.cache/gan_lightning/extractors/``). Without
either it trains a small classifier on the training split and stores it there; ``force=true`` trains one into the
cache even so (it then takes the shipped one's place on this machine). A build in progress elsewhere is waited for.
"""

from __future__ import annotations

import sys

from gan_lightning.commands import Command, Setting, boolean, main_guard
from gan_lightning.config import compose, to_config

COMMAND = Command(
    "gan_lightning.extractor",
    __doc__.strip(),
    [Setting("force", "train one into the cache even when one is shipped or cached", False, boolean)],
    overrides="the data set and its settings, as for a run: data=fashion_mnist, data.root=DIR",
)


def main(argv=None) -> int:
    own, overrides = COMMAND.parse(sys.argv[1:] if argv is None else argv)
    cfg = to_config(
        compose(["model=mlp", "metrics=none", *overrides])
    )  # the MLP fits any data: only the data settings matter here
    cfg.data.check()
    import torch

    from gan_lightning.metrics.domain import ensure_domain_extractor

    path = ensure_domain_extractor(cfg.data, force=own["force"])
    record = torch.load(path, map_location="cpu", weights_only=True)
    print(f"{cfg.data.cache_key}: test accuracy {record['test_accuracy']:.4f} ({path})")
    return 0


if __name__ == "__main__":
    main_guard(main)
