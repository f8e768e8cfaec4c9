"""``python -m gan_lightning.extractor data=fashion_mnist``: train the domain feature extractor of a data set.

Trains a small classifier on the training split, reports its test accuracy and stores it in the cache
(``~/.cache/gan_lightning/extractors/``), where ``metrics=image metrics.features=domain`` finds it.
"""

from __future__ import annotations

import sys

from gan_lightning.commands import Command, main_guard
from gan_lightning.config import compose, to_config
from gan_lightning.metrics.domain import train_domain_classifier


COMMAND = Command(
    "gan_lightning.extractor",
    __doc__.strip(),
    [],
    overrides="the data set and its settings, as for a run: data=fashion_mnist, data.root=DIR",
)


def main(argv=None) -> int:
    _, overrides = COMMAND.parse(sys.argv[1:] if argv is None else argv)
    cfg = to_config(compose(["model=mlp", *overrides]))  # the MLP fits any data: only the data settings matter here
    cfg.data.check()
    record = train_domain_classifier(cfg.data)
    print(f"{cfg.data.cache_key}: test accuracy {record['test_accuracy']:.4f}")
    return 0


if __name__ == "__main__":
    main_guard(main)
