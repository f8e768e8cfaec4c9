"""``python -m gan_lightning.evaluate ckpt=PATH [metrics=image] [metrics.*=...]``: metrics of a checkpoint as JSON.

The model and data come from the checkpoint; the metrics default to ``image`` for image data and
``toy2d`` for 2-D mixtures, with the final number of samples (``metrics.final_num_samples`` or
``metrics.num_samples``). ``metrics=parzen`` gives the Parzen-window log-likelihood of Goodfellow et al. 2014.
"""

from __future__ import annotations

import json
import sys

import torch

from gan_lightning.commands import Command, Setting, main_guard
from gan_lightning.restore import configure, read_checkpoint, restore_module


COMMAND = Command(
    "gan_lightning.evaluate",
    __doc__.strip(),
    [Setting("ckpt", "the checkpoint to evaluate")],
    overrides="metrics=image|toy2d|parzen and metrics.KEY=VALUE (the rest of the config comes from the checkpoint)",
)


def main(argv=None) -> int:
    own, overrides = COMMAND.parse(sys.argv[1:] if argv is None else argv)
    checkpoint = read_checkpoint(own["ckpt"])
    if not any(o.startswith("metrics=") for o in overrides):
        image_data = len(configure(checkpoint, []).data.sample_shape) == 3
        overrides = ["metrics=image" if image_data else "metrics=toy2d", *overrides]
    config = configure(checkpoint, overrides)
    module = restore_module(checkpoint, config)
    config.metrics.check(config.data)
    config.metrics.prepare(config.data)
    if torch.cuda.is_available():
        module = module.cuda()
    evaluation = config.metrics.callback(config.data, config.seed)
    if evaluation is None:
        print(json.dumps({"step": module.steps_done, "metrics": {}}))
        return 0
    module.max_steps = module.steps_done  # measure as at the last step: the final number of samples
    results = evaluation.measure(module, final=True)
    protocol = evaluation.protocol(module, final=True)
    print(json.dumps({"checkpoint": own["ckpt"], "step": module.steps_done, "metrics": results, "protocol": protocol}, indent=2))
    return 0


if __name__ == "__main__":
    main_guard(main)
