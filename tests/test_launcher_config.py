"""hydra/launcher=slurm as submitit receives it: resources follow the trainer, site defaults the environment."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf
from omegaconf.errors import InterpolationResolutionError

import gan_lightning.sweeps.slurm  # noqa: F401  (registers the resolvers the preset uses)
from tests.helpers.hydra import compose_config


def launcher(*overrides):
    cfg = compose_config(["hydra/launcher=slurm", "data=ring8", "model=mlp", *overrides], with_hydra=True)
    return OmegaConf.to_container(cfg.hydra.launcher, resolve=True)


def test_one_task_per_device_and_one_gpu_per_task_on_gpus():
    assert {k: launcher()[k] for k in ("tasks_per_node", "gpus_per_node", "nodes")} == {
        "tasks_per_node": 1,
        "gpus_per_node": 0,
        "nodes": 1,
    }
    cpu = launcher("trainer=ddp_cpu")
    assert (cpu["tasks_per_node"], cpu["gpus_per_node"]) == (2, 0)
    gpu = launcher("trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2")
    assert (gpu["tasks_per_node"], gpu["gpus_per_node"], gpu["nodes"]) == (4, 4, 2)


def test_site_defaults_come_from_the_environment(monkeypatch):
    assert {k: launcher()[k] for k in ("partition", "timeout_min", "cpus_per_task", "mem_gb", "account")} == {
        "partition": "debug",
        "timeout_min": 240,
        "cpus_per_task": 1,
        "mem_gb": 4,
        "account": None,
    }
    monkeypatch.setenv("GAN_LIGHTNING_SLURM_PARTITION", "gpu-long")
    monkeypatch.setenv("GAN_LIGHTNING_SLURM_TIMEOUT_MIN", "720")
    monkeypatch.setenv("GAN_LIGHTNING_SLURM_ACCOUNT", "lab")
    site = launcher()
    assert (site["partition"], site["timeout_min"], site["account"]) == ("gpu-long", 720, "lab")
    assert site["signal_delay_s"] < site["timeout_min"] * 60 and site["max_num_timeout"] >= 1


def test_devices_auto_needs_a_number_under_slurm():
    with pytest.raises(
        InterpolationResolutionError,
        match="trainer.devices='auto': under hydra/launcher=slurm give the number of devices per node",
    ):
        launcher("trainer=ddp")
