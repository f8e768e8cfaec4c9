"""The benchmark's cases and launchers: the configurations it times, named (no torch needed to list them)."""

from __future__ import annotations

from typing import Dict, List

# ring8 with PacGAN's networks (G 4 × 400 ReLU with batch norm, D 3 maxout layers of 200 × 5), the model
# this data set is studied with; "mlp_ring8_small" is the default MLP, whose 5 ms steps expose the
# framework's fixed cost per step.
PACGAN_MLP = [
    "model.g_hidden=[400,400,400,400]",
    "model.d_hidden=[200,200,200]",
    "model.d_activation=maxout",
    "model.d_maxout_pieces=5",
]
CASES: Dict[str, List[str]] = {
    "mlp_ring8": ["model=mlp", "data=ring8", *PACGAN_MLP],
    "mlp_ring8_small": ["model=mlp", "data=ring8"],
    "dcgan_fashion_mnist": ["model=dcgan", "data=fashion_mnist"],
    "dcgan_cifar_size": ["model=dcgan", "data=cifar10"],  # random 32×32×3 data: CIFAR-10's size, not its pixels
    # Simultaneous updates: D's and G's gradients from one forward pass (one G and one D forward fewer per step).
    "mlp_ring8_simultaneous": ["model=mlp", "data=ring8", *PACGAN_MLP, "trainer.updates=simultaneous"],
    "dcgan_fashion_mnist_simultaneous": ["model=dcgan", "data=fashion_mnist", "trainer.updates=simultaneous"],
}
# The framework as used: CSV logging every 50 steps, no sample grids, checkpoints or D's held-out check inside the
# timed window (and no held-out images to read: dcgan_cifar_size trains on random data, offline).
FRAMEWORK = [
    "logger=csv",
    "metrics=none",
    "callbacks.samples_every_n_steps=0",
    "callbacks.checkpoint_every_n_steps=0",
    "callbacks.progress_every_n_steps=0",
    "callbacks.d_health_every_n_steps=0",
]

# Multiruns over seeds as a user runs them (one command line each, start-up included), through each launcher.
SWEEP = ["logger=csv", "metrics=none", "callbacks.samples_every_n_steps=0", "callbacks.progress_every_n_steps=0"]
LAUNCHERS = {"basic": [], "parallel": ["hydra/launcher=parallel"], "vectorized": ["hydra/launcher=vectorized"]}


# Seeds trained side by side (gan_lightning.sweeps.vectorized): the 1-D game with theory_1d's networks, and the default
# MLP and PacGAN's networks on ring8.
VECTORIZED_CASES: Dict[str, List[str]] = {
    "gaussian1d_theory": ["model=mlp", "data=gaussian1d", "model.g_hidden=[64,64]", "model.d_hidden=[64,64]"],
    "mlp_ring8_small": CASES["mlp_ring8_small"],
    "mlp_ring8": CASES["mlp_ring8"],
}
MEMBERS = (1, 4, 16)
