"""A PostgreSQL server of the test session's own, from Debian's packages (``postgresql``; .ci/run installs it), in a
temporary folder on a free port of the loopback interface: the database that sweeps on several machines share.

As root, the server runs as the ``postgres`` user, which PostgreSQL requires."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator, List, Optional


def server_binaries() -> Optional[Path]:
    """The folder of initdb and pg_ctl: Debian keeps them per major version under /usr/lib/postgresql."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path else None


def as_server_user(command: List[str]) -> List[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def local_postgres() -> Iterator[str]:
    """A running server; yields the URL of its ``postgres`` database (user ``postgres``, no password, loopback only)."""
    binaries = server_binaries()
    if binaries is None:
        raise RuntimeError("PostgreSQL's server is not installed: apt-get install postgresql (as .ci/run does)")
    folder = Path(tempfile.mkdtemp(prefix="gan_lightning_postgres_"))
    data = folder / "data"
    if os.geteuid() == 0:
        shutil.chown(folder, user="postgres", group="postgres")
    port = free_port()
    run = lambda *args: subprocess.run(as_server_user(list(args)), capture_output=True, text=True, timeout=120)
    try:
        initialised = run(str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
        assert initialised.returncode == 0, initialised.stderr
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        started = run(
            str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start"
        )
        assert started.returncode == 0, started.stderr + (folder / "log").read_text(errors="replace")
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        if data.is_dir():
            run(str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        time.sleep(0.1)
        shutil.rmtree(folder, ignore_errors=True)


def new_database(url: str, name: str) -> str:
    """A fresh database on the server of ``url``; its URL."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return url.rsplit("/", 1)[0] + f"/{name}"
