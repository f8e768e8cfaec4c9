"""Callbacks that watch a GAN train: sample grids (``samples``), checkpoints (``checkpoint``, in the layout of
``checkpoint_files``), progress lines (``progress``), stop signals (``interrupt``)."""
