"""Checkpoint files: the layout of a run's ``checkpoints/`` folder, atomic writes, safe reads, and the choice of what a
run resumes from."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from gan_lightning.adapter.checkpoint_layout import weights
from gan_lightning.checkpoints.folder import last_checkpoint
from gan_lightning.errors import UserError
from gan_lightning.files import atomic_write, user_fixable
from gan_lightning.training.state import PROJECT_KEY, steps_done, stored_config

RESUME_MODES = ("auto", "never")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes to a temporary file beside the target, syncs it, then renames it over the target.

    A kill at any moment leaves either the previous file or the new one, never a torn one. (Lightning's
    own writer stages the file in the system temp folder and moves it, which is a copy, not a rename,
    whenever that folder is on another file system.)

    Only the writer removes its temporary file; those of killed writers are removed by the next run that holds
    the directory's lock (RunDirectory.claim). A full disk or a missing permission is the user's to fix: it ends
    the run with a message naming the checkpoint, and the previous checkpoint stays as it was.
    """

    def save_checkpoint(self, checkpoint: Dict[str, Any], path, storage_options: Optional[Any] = None) -> None:
        try:
            atomic_write(path, lambda f: torch.save(checkpoint, f))
        except Exception as error:
            fixable = user_fixable(error, path)
            if fixable is None:
                raise
            raise fixable from None


def load_safely(path: Path) -> Dict[str, Any]:
    """Load a checkpoint without running any code it may carry (``weights_only=True``)."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as error:
        first_line = str(error).strip().splitlines()[0]
        raise UserError(
            f"{path} holds objects other than tensors and plain values, so it is not loaded (loading it could run code): {first_line}"
        ) from None
    except Exception as error:
        raise UserError(f"{path} is not a readable checkpoint: {type(error).__name__}: {error}") from None
    if not isinstance(checkpoint, dict) or PROJECT_KEY not in checkpoint:
        raise UserError(f"{path} is not a checkpoint of gan_lightning (it has no '{PROJECT_KEY}' entry).")
    return checkpoint


@dataclass
class Resume:
    path: Path
    checkpoint: Dict[str, Any]  # loaded safely, memory-mapped

    @property
    def steps_done(self) -> int:
        return steps_done(self.checkpoint)


def select_resume(resume: str, run_dir: Path) -> Optional[Resume]:
    """What ``resume=auto|never|PATH`` means for this run directory; raises UserError for unusable choices."""
    last = last_checkpoint(run_dir)
    if resume == "never":
        if last.exists():
            raise UserError(
                f"resume='never' but {last} exists and would be overwritten: choose another hydra.run.dir, "
                "or resume=auto to continue that run."
            )
        return None
    if resume == "auto":
        path = last if last.exists() else None
    else:
        path = Path(resume).expanduser()
        if not path.is_file():
            raise UserError(
                f"resume={resume!r}: no such checkpoint file; allowed: auto, never, or the path of a checkpoint."
            )
    if path is None:
        return None
    return Resume(path, load_safely(path))


# Choices a resumed run must share with its checkpoint: the optimizers' state and the losses belong to them.
FIXED_CHOICES = ("optimizer", "objective")
# Data settings that say where the data are or how they are fed, not what they are: a resume may change them.
DATA_LOCATION = ("batch_size", "root", "download", "num_workers", "strict")


def trained_on(config: Dict[str, Any]) -> Dict[str, Any]:
    """What a run learns from, as its stored config says: the data set and its settings (subset, image size, ...)
    and whether D and G see the class labels."""
    data = config.get("data") or {}
    identity = {"data": (config.get("choices") or {}).get("data")}
    identity.update({f"data.{key}": value for key, value in data.items() if key not in DATA_LOCATION})
    identity["model.conditional"] = (config.get("model") or {}).get("conditional")
    return identity


def refuse_changes(path: Path, before: Dict[str, Any], now: Dict[str, Any], trained: str, because: str) -> None:
    """UserError naming each setting whose value the checkpoint recorded (``before``) and this run changes."""
    changed = [key for key in before if key in now and before[key] is not None and before[key] != now[key]]
    if changed:
        then = " ".join(f"{key}={before[key]}" for key in changed)
        asked = " ".join(f"{key}={now[key]}" for key in changed)
        raise UserError(
            f"{path} {trained} {then}, but this run asks for {asked}: {because}. Resume with {then}, or start a new run "
            "in another directory (hydra.run.dir=...)."
        )


def check_compatible(resume: Resume, module: torch.nn.Module, run_config: Dict[str, Any]) -> None:
    """The checkpoint fits the configuration (``run_config``: the run's resolved config with its ``choices``): the
    same optimizer and objective, the same data, weights of the configured networks (same names and shapes), and
    not a smoke run's. Checked before anything is loaded into the run or written into its directory."""
    stored = stored_config(resume.checkpoint)
    saved_choices, choices = stored.get("choices") or {}, run_config.get("choices") or {}
    refuse_changes(
        resume.path,
        {group: saved_choices.get(group) for group in FIXED_CHOICES},
        {group: choices[group] for group in FIXED_CHOICES if choices.get(group)},
        "was trained with", "its optimizer state and losses belong to the former",
    )  # fmt: skip
    refuse_changes(
        resume.path,
        trained_on(stored),
        trained_on(run_config),
        "was trained on",
        "a run continues on the data it learnt from",
    )
    if (stored.get("trainer") or {}).get("fast_dev_run") and not (run_config.get("trainer") or {}).get("fast_dev_run"):
        raise UserError(
            f"{resume.path} is the checkpoint of a smoke run (debug=fast_dev_run), which a run does not continue from: "
            "choose another hydra.run.dir for the run, or remove that folder first."
        )
    saved = weights(resume.checkpoint)
    wanted = module.state_dict()
    missing = sorted(set(wanted) - set(saved))
    unexpected = sorted(set(saved) - set(wanted))
    reshaped = sorted(k for k in set(saved) & set(wanted) if tuple(saved[k].shape) != tuple(wanted[k].shape))
    if missing or unexpected or reshaped:
        details = "; ".join(
            f"{label}: {', '.join(keys[:3])}{' …' if len(keys) > 3 else ''}"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("other shape", reshaped))
            if keys
        )
        raise UserError(
            f"{resume.path} does not fit the configured model and data ({details}); resume with the configuration it was trained with."
        )
