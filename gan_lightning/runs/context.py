"""Where a run writes, how trackers name it, and what of its config they keep."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf


@dataclass
class RunContext:
    """Where a run writes, how trackers name it, and where it continues from."""

    run_dir: Path
    name: str
    group: Optional[str] = None
    tags: List[str] = field(default_factory=list)
    # The run's resolved config (secrets removed) with the option chosen in each group under "choices": stored in
    # every checkpoint (evaluate and sample rebuild the run from it) and logged as the trackers' hyperparameters.
    config: Dict[str, Any] = field(default_factory=dict)
    run_id: Optional[str] = None  # the run's one W&B run, the same at every resume
    resume_step: int = 0  # training steps the checkpoint it resumes from holds
    trial: Any = None  # the Optuna trial a job of hydra/sweeper=search runs (gan_lightning.study.trial)


SECRET_MARKERS = ("api_key", "apikey", "token", "secret", "password")

# Overrides that do not make a run another run: a resume that raises trainer.max_steps keeps the run's name.
NOT_NAMING = ("trainer.max_steps", "resume", "verbose", "debug", "logger.", "hydra.", "hydra/", "callbacks.")


def naming_overrides(overrides: List[str], swept: Optional[set] = None) -> List[str]:
    """The overrides a run is named by: in a sweep, those of the keys the sweep varies (``seed=3,objective=minimax``);
    else every override but those that do not make it another run."""
    keys = [o.lstrip("+~").split("=", 1)[0] for o in overrides]
    if swept:
        return [o for o, key in zip(overrides, keys) if key in swept]
    return [o for o, key in zip(overrides, keys) if not key.startswith(NOT_NAMING)]


def swept_keys(sweep_dir: Path) -> Optional[set]:
    """The keys a multirun varies, from the command line Hydra records in the sweep directory; None where it cannot
    be read."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        recorded = OmegaConf.load(sweep_dir / "multirun.yaml").hydra.overrides.task
        parsed = OverridesParser.create().parse_overrides([str(o) for o in recorded])
    except Exception:  # a missing or unreadable record: name the run by its overrides
        return None
    return {o.key_or_group for o in parsed if o.is_sweep_override()} - {"hydra"}


def scrub_secrets(tree: Any) -> Any:
    """A copy of a config tree without values whose key names a secret (API keys, tokens, passwords)."""
    if isinstance(tree, dict):
        return {k: scrub_secrets(v) for k, v in tree.items() if not any(m in str(k).lower() for m in SECRET_MARKERS)}
    if isinstance(tree, list):
        return [scrub_secrets(v) for v in tree]
    return tree


def run_context(
    cfg: DictConfig, run_dir: Optional[Path] = None, task_overrides: Optional[List[str]] = None
) -> RunContext:
    """Names for trackers, from Hydra's view of this job: overrides, sweep directory, chosen options (a member of a
    vectorized group passes its own directory and overrides)."""
    hc = HydraConfig.get()
    choices = hc.runtime.choices
    task_overrides = list(hc.overrides.task) if task_overrides is None else task_overrides
    default_name = "-".join(str(choices.get(g)) for g in ("model", "data", "objective"))
    swept = swept_keys(Path(hc.sweep.dir)) if hc.mode == RunMode.MULTIRUN else None
    name = cfg.logger.name or ",".join(naming_overrides(task_overrides, swept)) or default_name
    group = cfg.logger.group
    if group is None and hc.mode == RunMode.MULTIRUN:
        group = "_".join(Path(hc.sweep.dir).parts[-2:])  # one group per sweep
    tags = [str(choices.get(g)) for g in ("model", "data", "objective")] + list(cfg.logger.tags)
    config = scrub_secrets(OmegaConf.to_container(cfg, resolve=True))
    config["choices"] = {k: v for k, v in choices.items() if not k.startswith("hydra")}
    return RunContext(Path(run_dir or hc.runtime.output_dir), name=name, group=group, tags=tags, config=config)
