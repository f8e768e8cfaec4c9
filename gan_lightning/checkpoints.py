"""Checkpoint files: atomic writes, safe reads, and the choice of what a run resumes from."""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from gan_lightning.errors import UserError

PROJECT_KEY = "gan_lightning"  # present in every checkpoint this project writes
RESUME_MODES = ("auto", "never")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes to a temporary file beside the target, syncs it, then renames it over the target.

    A kill at any moment leaves either the previous file or the new one, never a torn one. (Lightning's
    own writer stages the file in the system temp folder and moves it, which is a copy, not a rename,
    whenever that folder is on another file system.)
    """

    def save_checkpoint(self, checkpoint: Dict[str, Any], path, storage_options: Optional[Any] = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a writer that was killed
            stale.unlink(missing_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


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
        return int(self.checkpoint[PROJECT_KEY]["steps_done"])


def select_resume(resume: str, run_dir: Path) -> Optional[Resume]:
    """What ``resume=auto|never|PATH`` means for this run directory; raises UserError for unusable choices."""
    last = run_dir / "checkpoints" / "last.ckpt"
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
            raise UserError(f"resume={resume!r}: no such checkpoint file; allowed: auto, never, or the path of a checkpoint.")
    if path is None:
        return None
    return Resume(path, load_safely(path))


def check_compatible(resume: Resume, module: torch.nn.Module) -> None:
    """The checkpoint's weights fit the configured networks (same names and shapes)."""
    saved = resume.checkpoint["state_dict"]
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
        raise UserError(f"{resume.path} does not fit the configured model and data ({details}); resume with the configuration it was trained with.")
