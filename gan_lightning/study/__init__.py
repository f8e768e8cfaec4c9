"""An Optuna study as the project keeps it: its settings and search space, where it lives, what the sweep and its
trials record in it, and a run's side of it as a trial (reporting, pruning, telling how it ended). The sweep that
fills a study is gan_lightning.sweeps.search."""
