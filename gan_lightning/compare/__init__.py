"""Comparing arms of a study over seeds: runs grouped into arms (``arms``), the statistics (``statistics``) and the
command that writes the comparison (``python -m gan_lightning.compare``)."""
