"""Where gan_lightning meets Lightning's internals: every private Lightning name the package reads is read here.

- ``fastpath``: a LightningModule base whose per-step work skips Lightning's machinery where it adds nothing
  (direct backward passes and optimizer steps, batches passed unchanged, scalars handed straight to the
  loggers), and the few questions about the trainer that Lightning answers only privately.
- ``steploop``: the epoch loop with its per-step questions answered once per epoch, and a free profiler.
- ``runtime``: process-wide settings that importing Lightning changes.
- ``ddp``: the launcher and strategy of data-parallel jobs.
- ``access``: state of Lightning's objects that only private attributes reveal.
- ``checkpoint_layout``: the keys of Lightning's checkpoints (weights, optimizers, loops, callbacks).

``trainer.fast_path=false`` runs plain Lightning instead (same weights, bit for bit). The private names used
here exist in the Lightning versions ``pyproject.toml`` allows; tests/test_adapter.py pins them.
This package imports nothing at import time: ``gan_lightning`` imports ``runtime`` before Lightning loads.
"""
