#!/usr/bin/env bash
# The checks that need a CUDA GPU, in one go within a time budget (default 540 s): the CUDA-graph tests, the
# benchmark of the captured step against the eager plain loop, then PacGAN's Table 1 (experiment=mode_coverage_2d,
# GAN and PacGAN2, 10 seeds each as vectorized groups, captured steps) for whatever time is left, on PACGAN_DATA
# (default grid25) for PACGAN_STEPS steps (default 40 000, a tenth of the paper's). Logs and results go to OUT_DIR.
#
#   bash scripts/gpu_checks.sh OUT_DIR [SECONDS]
#
# On a machine without internet access, the Python packages it lacks travel as wheels in .whl/ and Fashion-MNIST's
# training files in .gldata/ (read through GAN_LIGHTNING_DATA); both are used when present:
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux_2_28_x86_64 -d .whl PACKAGE==VERSION
#   mkdir -p .gldata && cp /usr/share/datasets/fashion-mnist/train-* .gldata/
set -u
out=${1:?usage: gpu_checks.sh OUT_DIR [SECONDS]}
budget=${2:-540}
mkdir -p "$out"
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$repo
else
    export PYTHONPATH=$repo
fi
[ -d .gldata ] && export GAN_LIGHTNING_DATA=$repo/.gldata
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1 WANDB_MODE=offline
left() { echo $((budget - SECONDS)); }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/machine.txt"
python3 -c "import torch, pytorch_lightning as pl; print('torch', torch.__version__, 'lightning', pl.__version__, torch.cuda.get_device_name())" | tee -a "$out/machine.txt"

echo "== tests (${SECONDS} s)"
timeout 240 python3 -m pytest -q -p no:cacheprovider --tb=line tests/test_cuda_graph.py > "$out/tests.log" 2>&1
grep -E "AssertionError|Error|passed|failed" "$out/tests.log" | cut -c1-300 | tail -15

echo "== benchmark: captured step against the eager plain loop (${SECONDS} s)"
timeout 120 python3 -m gan_lightning.bench rounds=2 warmup=30 steps=200 cases=mlp_ring8,mlp_ring8_small,dcgan_fashion_mnist \
    trainer.cuda_graph=true out="$out/bench_graph.json" workdir=/tmp/bench_runs > "$out/bench.log" 2>&1
grep -vE "Warning|INFO|warn" "$out/bench.log" | tail -12

data=${PACGAN_DATA:-grid25} steps=${PACGAN_STEPS:-40000}
echo "== PacGAN Table 1 on $data, $steps steps, 10 seeds per arm, captured steps ($(left) s left)"
if [ "$(left)" -gt 60 ]; then
    timeout "$(left)" python3 -m gan_lightning.run -m experiment=mode_coverage_2d data="$data" trainer.cuda_graph=true trainer.max_steps="$steps" \
        metrics.every_n_steps=$((steps / 4)) callbacks.progress_every_n_steps=$((steps / 8)) hydra.sweep.dir=/tmp/pacgan > "$out/pacgan.log" 2>&1
    grep -E "step [0-9]+/|SIGTERM|Error" "$out/pacgan.log" | tail -4
    (cd /tmp && tar czf "$out/pacgan_runs.tar.gz" --exclude='*.ckpt' pacgan 2>/dev/null)
fi
echo "== done in ${SECONDS} s"
