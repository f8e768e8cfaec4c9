"""gan_lightning: train, track and compare Generative Adversarial Networks with Lightning and Hydra."""

__version__ = "0.1.0"
