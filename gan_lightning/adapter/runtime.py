"""A process-wide setting that importing Lightning changes, and that costs time at every optimizer step."""

from __future__ import annotations

import os

NVML_CUDA_CHECK = "PYTORCH_NVML_BASED_CUDA_CHECK"
# Read when gan_lightning is imported, before any of its modules imports Lightning.
_value_before_lightning = os.environ.get(NVML_CUDA_CHECK)


def restore_cuda_check() -> None:
    """Undo Lightning's PYTORCH_NVML_BASED_CUDA_CHECK=1 once the training processes run.

    Lightning sets it on import so that its fork-based launchers never initialise CUDA before forking; this
    framework starts its processes without fork. With it set, torch.cuda.is_available() loads and initialises
    NVML at every call instead of using CUDA's cached answer, and torch's optimizers call it at every step:
    0.06 ms per optimizer step on the 2-vCPU VM of docs/performance.md.
    """
    if _value_before_lightning is None:
        os.environ.pop(NVML_CUDA_CHECK, None)
    else:
        os.environ[NVML_CUDA_CHECK] = _value_before_lightning
