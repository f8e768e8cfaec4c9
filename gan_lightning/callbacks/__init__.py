"""Callbacks that watch a GAN train: sample grids, checkpoints, progress lines, stop signals."""

from gan_lightning.callbacks.checkpoint import PeriodicCheckpoint
from gan_lightning.callbacks.interrupt import StopOnSignal
from gan_lightning.callbacks.progress import ProgressLog
from gan_lightning.callbacks.samples import SampleGrid

__all__ = ["PeriodicCheckpoint", "ProgressLog", "SampleGrid", "StopOnSignal"]
