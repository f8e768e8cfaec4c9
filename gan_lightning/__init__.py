"""gan_lightning: train, track and compare Generative Adversarial Networks with Lightning and Hydra."""

from gan_lightning.adapter import runtime as _runtime  # noqa: F401  (first: it reads the environment before Lightning's import changes it)

__version__ = "0.1.0"
