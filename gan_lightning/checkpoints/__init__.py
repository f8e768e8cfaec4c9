"""A run's checkpoints: the names in its ``checkpoints/`` folder (``folder``), the callback that writes them
(``saving``), atomic writes, safe reads and what a run resumes from (``resume``). Lightning's own keys inside the file:
``gan_lightning.adapter.checkpoint_layout``; a trained GAN rebuilt from a finished run's checkpoint:
``gan_lightning.results.restore``."""
