"""The benchmark, developer tooling off the training path: ``python -m gan_lightning.bench`` (``__main__``), its
cases (``cases``), its measurements (``loops``) and what a user would write instead of the framework (``peers``)."""
