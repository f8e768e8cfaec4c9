"""Lightning callbacks that watch a GAN train: sample grids (``samples``), progress lines (``progress``), D's health
(``discriminator_health``). The callbacks that belong to another concern live with it: periodic checkpoints in
``gan_lightning.checkpoints``, stop signals in ``gan_lightning.runs``, evaluations in ``gan_lightning.metrics``."""
