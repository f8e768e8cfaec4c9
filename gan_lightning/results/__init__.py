"""Everything that reads finished runs: finding them and their summaries (``runs``), a trained GAN rebuilt from a checkpoint (``restore``),
evaluate's scoring of their checkpoints (``scoring``), the report of a run or sweep (``report``), and the comparison of arms over seeds
(``arms``, ``statistics``, ``curves``, ``compare``)."""
