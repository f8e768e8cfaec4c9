"""Datasets: each is a config class that knows its sample shape before loading, loads itself into memory
as one tensor, and draws its own samples for inspection (image grid, scatter plot or histogram)."""

# Importing the datasets registers their schemas.
from gan_lightning.data import idx, images, toy  # noqa: E402,F401
from gan_lightning.data.base import DataConfig  # noqa: F401
