"""Files written whole or not at all (also when downloaded), file-system errors the user can fix, and the cache folder."""

from __future__ import annotations

import errno
import os
import shutil
import urllib.request
from pathlib import Path
from typing import Any, BinaryIO, Callable, Optional, Union

from gan_lightning.errors import UserError


def cache_root() -> Path:
    """Where gan_lightning keeps what it downloads or builds once (data sets, feature extractors, real-data features):
    ``$XDG_CACHE_HOME/gan_lightning``, or ``~/.cache/gan_lightning``."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gan_lightning"


# Seconds this process spent building what the cache keeps for every later run (a domain feature extractor) or
# waiting for another process to build it: a run's wall time leaves them out, to measure the run.
_cache_build_s = 0.0


def count_cache_build(seconds: float) -> None:
    global _cache_build_s
    _cache_build_s += seconds


def cache_build_seconds() -> float:
    return _cache_build_s


# Errors of the file system or its permissions, not of this program: reported as one message, exit code 2.
USER_FIXABLE = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is exhausted",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "the file system is read-only",
}


def atomic_write(path: Union[str, Path], data: Union[bytes, str, Callable[[BinaryIO], Any]]) -> Path:
    """Write ``data`` to a temporary file beside ``path``, sync it and rename it over ``path``: a kill at any moment
    leaves the old content or the new one, never a torn file. The temporary file is this writer's own.
    ``data`` is bytes, text, or a function that writes into the open binary file (``torch.save``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


# A machine without network fails fast; the caller's message then names the offline route.
DOWNLOAD_TIMEOUT_S = 10


def download(url: str, path: Union[str, Path]) -> Path:
    """Fetch ``url`` into ``path``, whole or not at all (``atomic_write``). Raises OSError (urllib's URLError is one)
    when no connection is made within DOWNLOAD_TIMEOUT_S or the transfer fails."""
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
        return atomic_write(path, lambda f: shutil.copyfileobj(response, f))


def download_error(error: OSError) -> str:
    """What went wrong with a download, in a few words (urllib's reason when it gives one)."""
    return str(getattr(error, "reason", error))


def user_fixable(
    error: BaseException, path: Optional[Union[str, Path]] = None, folder: Optional[Union[str, Path]] = None
) -> Optional[UserError]:
    """A UserError naming the path and what to do, for a file-system error the user can fix (also when another error,
    such as torch.save's RuntimeError, was raised while handling it); None for any other error. It names ``path``,
    else the file the error names, else ``folder``."""
    seen = set()
    while error is not None and not (isinstance(error, OSError) and error.errno in USER_FIXABLE):
        seen.add(id(error))
        error = error.__cause__ or error.__context__
        if error is not None and id(error) in seen:
            return None
    if error is None:
        return None
    where = path or error.filename or (f"into {folder}" if folder else "the run directory")
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        advice = "free some space there, or point hydra.run.dir (hydra.sweep.dir) at another disk, then run the same command again to resume"
    else:
        advice = "make it writable for this user, or point hydra.run.dir (hydra.sweep.dir) at a writable folder"
    return UserError(f"cannot write {where}: {USER_FIXABLE[error.errno]}; {advice}.")
