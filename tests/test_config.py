"""Every config-group option composes into typed objects; wrong types and unknown keys fail at composition."""

from __future__ import annotations

import pytest
from hydra.errors import ConfigCompositionException

from gan_lightning.config import Config, to_config, validate
from gan_lightning.data import DataConfig
from gan_lightning.models import ModelConfig
from gan_lightning.tracking.credentials import logs_offline, where_wandb_logs
from gan_lightning.training.objectives import Objective
from gan_lightning.training.optim import OptimizerConfig
from tests.helpers.hydra import CONF_DIR, compose_config

NEEDS = {  # options that only make sense with certain other settings
    ("metrics", "toy2d"): ["data=ring8"],
    ("metrics", "toy1d"): ["data=gaussian1d", "model=mlp"],
    ("model", "resnet"): ["data=cifar10"],
    ("data", "image_folder"): ["data.path={tmp_path}"],  # a folder of the test's own: nothing else writes there
}
GROUPS = ["model", "data", "objective", "optimizer", "trainer", "logger", "callbacks", "metrics"]


def options(group: str):
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_group_option_composes_into_typed_objects(group, option, tmp_path):
    # The MLP fits every data set, so every option of the other groups can be checked with it.
    needs = [override.format(tmp_path=tmp_path) for override in NEEDS.get((group, option), [])]
    overrides = [f"{group}={option}"] + ([] if group == "model" else ["model=mlp"]) + needs
    cfg = to_config(compose_config(overrides))
    assert isinstance(cfg, Config)
    assert isinstance(cfg.model, ModelConfig) and isinstance(cfg.data, DataConfig)
    assert isinstance(cfg.objective, Objective)
    assert isinstance(cfg.optimizer.g, OptimizerConfig) and isinstance(cfg.optimizer.d, OptimizerConfig)
    validate(cfg)


def test_option_schema_types_follow_the_choice():
    cfg = to_config(compose_config(["model=mlp", "data=grid25", "objective=minimax", "optimizer=sgd"]))
    assert type(cfg.model).__name__ == "MLP"
    assert type(cfg.data).__name__ == "Grid" and cfg.data.sample_shape == (2,)
    assert type(cfg.objective).__name__ == "Minimax"
    assert type(cfg.optimizer.g).__name__ == "SGD" and cfg.optimizer.g.momentum == 0.5


def test_every_group_listed_in_defaults_has_options():
    for group in GROUPS:
        assert options(group), f"conf/{group}/ has no options"


def composition_error(overrides) -> str:
    with pytest.raises(ConfigCompositionException) as info:
        compose_config(overrides)
    return f"{info.value} {info.value.__cause__}"


def test_wrong_type_fails_at_composition():
    assert "'many' of type 'str' could not be converted to Integer" in composition_error(["trainer.max_steps=many"])


def test_unknown_key_fails_at_composition():
    assert "Key 'depth' not in 'DCGAN'" in composition_error(["model.depth=3"])


def test_key_of_another_option_is_unknown():
    # g_hidden belongs to the MLP schema; the DCGAN schema does not accept it.
    assert "Key 'g_hidden' not in 'DCGAN'" in composition_error(["model=dcgan", "model.g_hidden=[64]"])


def test_unknown_option_lists_the_available_ones():
    with pytest.raises(Exception) as info:
        compose_config(["objective=nope"])
    text = str(info.value)
    assert "objective/nope" in text and "minimax" in text and "nonsaturating" in text


def test_wandb_logs_online_where_credentials_are_found_and_offline_elsewhere(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_BASE_URL", raising=False)
    mode = to_config(compose_config()).logger.mode
    assert mode == "auto" and logs_offline(mode)  # the tests' NETRC holds nothing
    assert where_wandb_logs("auto").startswith("W&B: offline, into the run directory (no W&B credentials found")
    # What `wandb login` writes: an entry for W&B's server in the netrc file.
    netrc_file = tmp_path / "netrc"
    netrc_file.write_text("machine example.org login user password other\n")
    netrc_file.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc_file))
    assert logs_offline(to_config(compose_config()).logger.mode)  # another server's entry is not W&B's
    netrc_file.write_text("machine example.org login user password other\nmachine api.wandb.ai login user password k\n")
    assert not logs_offline(to_config(compose_config()).logger.mode)
    assert where_wandb_logs("auto") == f"W&B: online (credentials from {netrc_file} (api.wandb.ai))"
    monkeypatch.setenv("WANDB_BASE_URL", "https://wandb.example.org")  # a private server: its own entry
    assert logs_offline(to_config(compose_config()).logger.mode)
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    assert not logs_offline(to_config(compose_config()).logger.mode)
    assert where_wandb_logs("auto") == "W&B: online (credentials from WANDB_API_KEY)"
    # The environment's WANDB_MODE, and logger.mode, still decide where they are set.
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert logs_offline(to_config(compose_config()).logger.mode)
    assert not logs_offline(to_config(compose_config(["logger.mode=online"])).logger.mode)
