"""One run's lifecycle, the same for every kind of run: its names, its checks, its training, its summary and exit code.

``lifecycle``: from a composed config to summary.json and an exit status, the checks of settings first (no torch
imported until they pass); ``training``: what a run needs once they pass (data, networks, trainer, resume);
``context``: where a run writes and how trackers name it; stop signals: before training (``start_up_signals``) and in it (``interrupt``).
"""
