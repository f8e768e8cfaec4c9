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


SECRET_MARKERS = ("api_key", "apikey", "token", "secret", "password")


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
    overrides = [o for o in task_overrides if not o.startswith(("hydra.", "hydra/"))]
    default_name = "-".join(str(choices.get(g)) for g in ("model", "data", "objective"))
    name = cfg.logger.name or (",".join(overrides) if overrides else default_name)
    group = cfg.logger.group
    if group is None and hc.mode == RunMode.MULTIRUN:
        group = "_".join(Path(hc.sweep.dir).parts[-2:])  # one group per sweep
    tags = [str(choices.get(g)) for g in ("model", "data", "objective")] + list(cfg.logger.tags)
    config = scrub_secrets(OmegaConf.to_container(cfg, resolve=True))
    config["choices"] = {k: v for k, v in choices.items() if not k.startswith("hydra")}
    return RunContext(Path(run_dir or hc.runtime.output_dir), name=name, group=group, tags=tags, config=config)
