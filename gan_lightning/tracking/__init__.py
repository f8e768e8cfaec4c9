"""Where a run's values go: the W&B and CSV loggers (``loggers``), and a reader of W&B's offline run files
(``wandb_records``, pinned to one W&B minor version and contract-tested)."""
