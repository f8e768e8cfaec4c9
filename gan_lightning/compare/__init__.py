"""The command ``python -m gan_lightning.compare``: its settings and its steps (``__main__``); what it computes and
writes lives with the other readers of finished runs, in ``gan_lightning.results``."""
