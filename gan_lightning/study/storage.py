"""Where a study lives, and the study a sweep and its trials open there.

``hydra.sweeper.storage``: null keeps the study in a SQLite file of the sweep directory (``study.db``); ``journal``
in Optuna's file journal there (``study.journal``: append-only, safe on the shared file systems of clusters, where
SQLite is not); anything else is a SQLAlchemy URL (``postgresql://user@host/db`` for many machines). The sweep and
every trial open the same storage by the same rule, so a trial's reports and its end reach the study whichever
launcher runs it, and a study outlives any process.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Optional

from gan_lightning.errors import UserError
from gan_lightning.study.records import StoredStudy

log = logging.getLogger("gan_lightning")

SQLITE_FILE = "study.db"
JOURNAL_FILE = "study.journal"
DEFAULT_STUDY = "search"
ALLOWED = (
    "allowed: null (SQLite in the sweep directory), journal (a file journal there), or a SQLAlchemy URL such "
    "as postgresql://user:password@host:5432/database"
)
# Seconds a SQLite writer waits for another process's write to end before it fails ("database is locked").
SQLITE_TIMEOUT_S = 120


def storage_url(setting: Optional[str], sweep_dir: Path) -> str:
    """The storage a setting names, as the report and optuna-dashboard are given it."""
    if setting in (None, "", "sqlite"):
        return f"sqlite:///{Path(sweep_dir).resolve() / SQLITE_FILE}"
    if setting == "journal":
        return str(Path(sweep_dir).resolve() / JOURNAL_FILE)
    return str(setting)


def open_storage(setting: Optional[str], sweep_dir: Path) -> Any:
    """The Optuna storage of ``hydra.sweeper.storage``; UserError naming the setting where it cannot be opened."""
    from optuna.storages import JournalStorage, RDBStorage
    from optuna.storages.journal import JournalFileBackend

    url = storage_url(setting, sweep_dir)
    shown = f"hydra.sweeper.storage={setting}" if setting else f"the sweep's study ({url})"
    try:
        if setting == "journal":
            Path(sweep_dir).mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(url))
        if url.startswith("sqlite:///"):
            Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
            return RDBStorage(url, engine_kwargs={"connect_args": {"timeout": SQLITE_TIMEOUT_S}})
        if "://" not in url:
            raise ValueError("not a URL")
        return first_to_open(lambda: RDBStorage(url, engine_kwargs={"pool_pre_ping": True}))
    except (ImportError, ModuleNotFoundError) as error:
        raise UserError(
            f"{shown}: the database driver is not installed ({error}); for PostgreSQL: pip install 'psycopg[binary]' (or name psycopg2 in the URL: postgresql+psycopg2://...)."
        ) from None
    except Exception as error:  # a wrong URL, an unreachable server, a file that is no study: the user's to fix
        detail = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        raise UserError(f"{shown} cannot be opened ({detail}); {ALLOWED}.") from None


def first_to_open(open_once: Any, attempts: int = 5) -> Any:
    """A database storage opened by several sweeps at once: the first creates Optuna's tables, and one that tried at
    the same moment meets them half made (a unique-key violation); it tries again."""
    import sqlalchemy.exc

    for attempt in range(attempts):
        try:
            return open_once()
        except sqlalchemy.exc.IntegrityError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.5 * (attempt + 1))


def check_storage(setting: Optional[str]) -> None:
    """A database URL names a driver that is installed and a server that answers: checked before the sweep starts,
    by connecting alone (nothing is written; Optuna creates its tables when the sweep opens the study)."""
    if setting in (None, "", "sqlite", "journal") or str(setting).startswith("sqlite"):
        return
    import sqlalchemy

    shown = f"hydra.sweeper.storage={setting}"
    try:
        engine = sqlalchemy.create_engine(str(setting))
    except (ImportError, ModuleNotFoundError) as error:
        raise UserError(
            f"{shown}: the database driver is not installed ({error}); for PostgreSQL: pip install 'psycopg[binary]' (or name psycopg2 in the URL: postgresql+psycopg2://...)."
        ) from None
    except Exception as error:
        raise UserError(f"{shown} is not a storage URL ({error}); {ALLOWED}.") from None
    try:
        with engine.connect():
            pass
    except Exception as error:
        detail = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        raise UserError(f"{shown}: the database does not answer ({detail}).") from None
    finally:
        engine.dispose()


def load_study(setting: Optional[str], sweep_dir: Path, name: Optional[str], pruner: Any = None) -> StoredStudy:
    """The study a trial reports to (it exists: the sweep created it), with its storage."""
    import optuna

    storage = open_storage(setting, sweep_dir)
    study = optuna.load_study(
        study_name=name or DEFAULT_STUDY,
        storage=storage,
        pruner=pruner,
        sampler=optuna.samplers.RandomSampler(),  # a trial never samples: its parameters came with it
    )
    return StoredStudy(study, storage)


def dashboard_command(setting: Optional[str], sweep_dir: Path) -> str:
    """The command that opens the study in optuna-dashboard."""
    return f"optuna-dashboard {storage_url(setting, sweep_dir)}"
