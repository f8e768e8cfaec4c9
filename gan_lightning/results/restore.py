"""Rebuild a trained GAN from its checkpoint alone: the run's resolved config travels inside it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from omegaconf import OmegaConf

from gan_lightning.adapter.checkpoint_layout import weights
from gan_lightning.checkpoints.resume import load_safely
from gan_lightning.config import Config, compose, to_config
from gan_lightning.errors import UserError
from gan_lightning.runs.build import build_module
from gan_lightning.training.module import GAN
from gan_lightning.training.state import steps_done, stored_config

# What the checkpoint fixes: the networks and the data they were trained on. Everything else
# (metrics, trainer, logger) comes from the command line, on top of the defaults.
FROM_CHECKPOINT = ("model", "data", "objective", "regularization", "seed")


def read_checkpoint(checkpoint_path: str) -> Dict[str, Any]:
    path = Path(checkpoint_path).expanduser()
    if not path.is_file():
        raise UserError(f"ckpt={checkpoint_path!r}: no such checkpoint file.")
    checkpoint = load_safely(path)
    if not stored_config(checkpoint):
        raise UserError(f"{path} carries no run configuration (it was not written by gan_lightning.run).")
    return checkpoint


def run_metrics(checkpoint: Dict[str, Any]) -> Tuple[str, Dict[str, Any]]:
    """The kind of metrics the run measured (image, toy2d, toy1d; none) and its settings: its final protocol is the
    one an evaluation of it repeats by default."""
    stored = stored_config(checkpoint)
    chosen = stored.get("choices", {}).get("metrics")
    settings = stored.get("metrics") or {}
    if chosen == "auto" or not chosen:
        kind = configure(checkpoint, ["metrics=auto"]).metrics.option
        return kind, settings.get(kind) or {}
    return chosen, settings


def configure(checkpoint: Dict[str, Any], overrides: List[str], metrics: Optional[Dict[str, Any]] = None) -> Config:
    """The run's config from the checkpoint, with ``overrides`` applied (on top of ``metrics``, the settings of the
    metrics group when given)."""
    stored = stored_config(checkpoint)
    choices = stored.get("choices", {})
    for override in overrides:
        group, _, option = override.lstrip("+~").partition("=")
        if group in ("model", "data", "objective") and choices.get(group) and option != choices[group]:
            what = {
                "model": "networks",
                "data": "data they were trained on",
                "objective": "losses they were trained with",
            }
            raise UserError(
                f"{override}: the {what[group]} come from the checkpoint, which holds {group}={choices[group]}; "
                f"leave out {override}."
            )
    chosen = [f"{group}={choices[group]}" for group in ("model", "data", "objective") if choices.get(group)]
    saved = OmegaConf.create({key: stored[key] for key in FROM_CHECKPOINT if key in stored})
    if metrics:
        saved.metrics = metrics
    keys = [o.split("=", 1)[0] for o in overrides if "=" in o]
    user = OmegaConf.from_dotlist(
        [o for o, key in zip((o for o in overrides if "=" in o), keys)
         if key.split(".")[0] in FROM_CHECKPOINT or (metrics and key.startswith("metrics."))]
    )  # fmt: skip
    return to_config(OmegaConf.merge(compose(chosen + overrides), saved, user))


def restore_module(checkpoint: Dict[str, Any], config: Config, overrides: List[str] = ()) -> GAN:
    """The GAN with the checkpoint's weights (G, D and the EMA of G), in eval mode."""
    module = build_module(config)
    try:
        module.load_state_dict(weights(checkpoint))
    except RuntimeError as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        first = next((line for line in lines if "size mismatch" in line or " key(s) " in line), lines[0])
        changed = [o for o in overrides if o.lstrip("+~").split(".")[0].split("=")[0] in ("model", "objective")]
        raise UserError(
            f"the checkpoint's networks do not fit these settings ({first.rstrip('.')}): the networks come from "
            f"the checkpoint, so leave out {' '.join(changed) if changed else 'overrides of model.*'}."
        ) from None
    module.steps_done = steps_done(checkpoint)
    return module.eval()


def load_run(checkpoint_path: str, overrides: List[str]) -> Tuple[Config, GAN]:
    checkpoint = read_checkpoint(checkpoint_path)
    config = configure(checkpoint, overrides)
    return config, restore_module(checkpoint, config, overrides)
