"""A private PostgreSQL server (Debian's postgresql) for tests and benchmarks: its own
cluster in a folder, on a free port, with a trust login for one local user."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from devtools.broker import free_port, wait_for_port


class PostgresMissing(RuntimeError):
    """The server binaries are not installed: a test that needs them fails, never skips."""


def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=_major)
    if found:
        return Path(found[-1]).parent
    which = shutil.which("postgres")
    if which:
        return Path(which).parent
    raise PostgresMissing(
        "PostgreSQL server binaries are missing: install them with apt-get install postgresql"
    )


def _major(path: str) -> int:
    part = Path(path).parts[-3]
    return int(part) if part.isdigit() else 0


class Postgres:
    """One cluster, started by `start()` and stopped by `stop()`; `dsn(db)` names a database,
    `create_database(name)` adds one.

    The cluster lives under `root`, except as root: PostgreSQL refuses to run as root, so
    the cluster then belongs to the `postgres` system user, in a folder of its own under the
    system's temp folder (it could not reach one inside a private temp folder), removed by
    `stop()`.
    """

    def __init__(self, root: Path, port: int | None = None) -> None:
        self.bindir = _bindir()
        self._own_root = os.getuid() == 0
        self.root = Path(tempfile.mkdtemp(prefix="sparwatt-pg-")) if self._own_root else root
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.user = "postgres" if self._own_root else pwd.getpwuid(os.getuid()).pw_name
        self.socket_dir = self.root / "run"

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user={self.user} dbname={dbname}"

    def url(self, dbname: str = "postgres") -> str:
        """The database as the collector's `storage.db` names it."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{dbname}"

    @property
    def _run_as(self) -> str | None:
        """The user (and group) the server's programs run as: None, the caller's own."""
        return self.user if self._own_root else None

    def start(self) -> Postgres:
        data = self.root / "data"
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        if self._own_root:
            entry = pwd.getpwnam(self.user)
            for path in (self.root, self.socket_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        log = self.root / "postgres.log"
        if not data.exists():
            subprocess.run(
                [
                    str(self.bindir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    self.user,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                ],
                check=True,
                capture_output=True,
                user=self._run_as,
                group=self._run_as,
            )
        with (self.root / "postgres.log").open("ab") as out:
            if self._own_root:
                entry = pwd.getpwnam(self.user)
                os.chown(log, entry.pw_uid, entry.pw_gid)
            self.proc = subprocess.Popen(
                [
                    str(self.bindir / "postgres"),
                    "-D",
                    str(data),
                    "-p",
                    str(self.port),
                    "-h",
                    "127.0.0.1",
                    "-k",
                    str(self.socket_dir),
                    # a test server: no waiting for the disk, room for many collectors
                    "-c",
                    "fsync=off",
                    "-c",
                    "max_connections=200",
                ],
                stdout=out,
                stderr=out,
                start_new_session=True,
                user=self._run_as,
                group=self._run_as,
            )
        wait_for_port(self.port, 30)
        return self

    def create_database(self, name: str) -> str:
        """A new empty database; returns its URL."""
        subprocess.run(
            [
                str(self.bindir / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                self.user,
                name,
            ],
            check=True,
            capture_output=True,
        )
        return self.url(name)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            # SIGINT is PostgreSQL's fast shutdown: open sessions are ended, not waited for
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Postgres:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
