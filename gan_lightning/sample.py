"""``python -m gan_lightning.sample ckpt=PATH n=64 out=grid.png [seed=0]``: a picture of samples from a checkpoint.

An image grid for image data, a scatter plot over the modes for 2-D mixtures, a histogram for 1-D data;
drawn from the EMA generator when the run kept one.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from gan_lightning.commands import main_guard, split_arguments
from gan_lightning.errors import invalid
from gan_lightning.restore import load_run


def main(argv=None) -> int:
    own, overrides = split_arguments(sys.argv[1:] if argv is None else argv, own=("ckpt", "n", "out", "seed"))
    if "ckpt" not in own:
        print("usage: python -m gan_lightning.sample ckpt=PATH [n=64] [out=samples.png] [seed=0]", file=sys.stderr)
        return 2
    try:
        n, seed = int(own.get("n", 64)), int(own.get("seed", 0))
    except ValueError:
        raise invalid("n / seed", (own.get("n"), own.get("seed")), "whole numbers") from None
    if n < 1:
        raise invalid("n", n, "a positive number of samples")
    config, module = load_run(own["ckpt"], overrides)
    out = Path(own.get("out", "samples.png"))
    latents = module.generator.sample_latent(n, generator=torch.Generator().manual_seed(seed))
    out.parent.mkdir(parents=True, exist_ok=True)
    config.data.save_samples(module.generate(latents), out)
    print(f"{n} samples from {own['ckpt']} (step {module.steps_done}) written to {out}")
    return 0


if __name__ == "__main__":
    main_guard(main)
