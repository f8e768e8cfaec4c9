"""A run's checkpoints, all in one place: the names in its ``checkpoints/`` folder (``folder``), the callback that
writes them (``saving``), atomic writes, safe reads and what a run resumes from (``resume``), and a trained GAN rebuilt
from its checkpoint alone (``restore``). Lightning's own keys inside the file: ``gan_lightning.adapter.checkpoint_layout``."""
