#!/usr/bin/env bash
# The searches of this study: for search seeds 0, 1 and 2, the DCGAN search of conf/hparams_search/dcgan_fashion_mnist.yaml
# (16 trials of 2 000 steps, two at a time) without pruning and with asynchronous successive halving (first rung at
# 250 steps, the best third goes on); FID alone beside the losses (no data-copying measure), as the study was run.
# SEEDS="1" ARMS="pruned" runs one search. Then: python experiments/search_pruning/analyse.py
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=1
PYTHON=${PYTHON:-.venv/bin/python}
SEEDS=${SEEDS:-0 1 2}
ARMS=${ARMS:-full pruned}
PRUNER="hydra/sweeper/pruner=successive_halving hydra.sweeper.pruner.min_resource=250 hydra.sweeper.pruner.reduction_factor=3"
for seed in $SEEDS; do
  for arm in $ARMS; do
    # shellcheck disable=SC2086
    "$PYTHON" -m gan_lightning.run -m hparams_search=dcgan_fashion_mnist hydra/launcher=parallel seed=$seed \
      metrics.copying_samples=0 $([ "$arm" = pruned ] && echo $PRUNER) hydra.sweep.dir=multirun/search_pruning/${arm}_$seed
  done
done
