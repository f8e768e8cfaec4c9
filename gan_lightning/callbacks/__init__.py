"""Lightning callbacks that watch a GAN train: sample grids (``samples``), progress lines (``progress``), stop signals
(``interrupt``), D's health (``discriminator_health``). Periodic checkpoints are a callback too, kept with the rest of
the checkpoint files in ``gan_lightning.checkpoints``."""
