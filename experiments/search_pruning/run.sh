#!/usr/bin/env bash
# The searches of this study: for search seeds 0, 1 and 2, the DCGAN search of conf/hparams_search/dcgan_fashion_mnist.yaml
# (16 trials of 2 000 steps, two at a time) without pruning and with asynchronous successive halving (first rung at
# 250 steps, the best third goes on). Then: python experiments/search_pruning/analyse.py
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=1
PYTHON=${PYTHON:-.venv/bin/python}
for seed in 0 1 2; do
  "$PYTHON" -m gan_lightning.run -m hparams_search=dcgan_fashion_mnist hydra/launcher=parallel seed=$seed \
    hydra.sweep.dir=multirun/search_pruning/full_$seed
  "$PYTHON" -m gan_lightning.run -m hparams_search=dcgan_fashion_mnist hydra/launcher=parallel seed=$seed \
    hydra/sweeper/pruner=successive_halving hydra.sweeper.pruner.min_resource=250 hydra.sweeper.pruner.reduction_factor=3 \
    hydra.sweep.dir=multirun/search_pruning/pruned_$seed
done
