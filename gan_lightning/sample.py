"""``python -m gan_lightning.sample ckpt=PATH n=64 out=grid.png [seed=0]``: a picture of samples from a checkpoint.

An image grid for image data, a scatter plot over the modes for 2-D mixtures, a histogram for 1-D data;
drawn from the EMA generator when the run kept one.
"""

from __future__ import annotations

import sys
from pathlib import Path

from gan_lightning.commands import Command, Setting, main_guard, whole_number

COMMAND = Command(
    "gan_lightning.sample",
    __doc__.strip(),
    [
        Setting("ckpt", "the checkpoint to draw from"),
        Setting("n", "how many samples", 64, whole_number(1)),
        Setting("out", "the picture to write", "samples.png"),
        Setting("seed", "the seed of the latents", 0, whole_number(0)),
    ],
)


def main(argv=None) -> int:
    own, overrides = COMMAND.parse(sys.argv[1:] if argv is None else argv)
    import torch

    from gan_lightning.results.restore import load_run

    n, seed = own["n"], own["seed"]
    config, module = load_run(own["ckpt"], overrides)
    out = Path(own["out"])
    latents = module.generator.sample_latent(n, generator=torch.Generator().manual_seed(seed))
    out.parent.mkdir(parents=True, exist_ok=True)
    config.data.save_samples(module.generate(latents), out, size=config.callbacks.samples_size)
    print(f"{n} samples from {own['ckpt']} (step {module.steps_done}) written to {out}")
    return 0


if __name__ == "__main__":
    main_guard(main)
