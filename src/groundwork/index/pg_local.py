"""A throw-away PostgreSQL 16 + pgvector server from the ``pgserver`` PyPI package's binaries.

For tests and benchmarks only (production points ``GROUNDWORK_PG_DSN`` at a managed server): the
server listens on 127.0.0.1 on a free port, keeps its data in a given folder, trusts local
connections, and is stopped by ``stop()`` (or at interpreter exit). When the process runs as root,
PostgreSQL refuses to start, so the server runs as the unprivileged system user ``pgserver``
(created if missing, as pgserver itself does).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import socket
import subprocess
from pathlib import Path

from groundwork.errors import StoreError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalPostgres:
    """Start with ``LocalPostgres(folder).start()``; ``dsn`` is then a libpq URI for database ``postgres``.

    Raises:
        StoreError: pgserver is not installed, or the server did not start (its log is quoted).
    """

    def __init__(self, folder: str | Path, port: int | None = None, settings: dict[str, str] | None = None) -> None:
        try:
            import pgserver  # noqa: F401
            from pgserver._commands import POSTGRES_BIN_PATH
        except ImportError as exc:
            raise StoreError(
                "the 'pgserver' package is needed to start a local PostgreSQL: pip install pgserver"
            ) from exc
        self.bin = Path(POSTGRES_BIN_PATH)
        self.folder = Path(folder).resolve()
        self.pgdata = self.folder / "pgdata"
        self.port = port or free_port()
        self.settings = settings or {}
        self.user: str | None = None
        self.dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, exe: str, *args: str) -> None:
        import pwd

        kwargs = {}
        if self.user:
            entry = pwd.getpwnam(self.user)
            kwargs = {"user": entry.pw_uid, "group": entry.pw_gid}
        proc = subprocess.run([str(self.bin / exe), *args], capture_output=True, text=True, timeout=120, **kwargs)
        if proc.returncode != 0:
            log = (self.folder / "postgres.log").read_text() if (self.folder / "postgres.log").exists() else ""
            raise StoreError(f"{exe} failed ({proc.returncode}): {proc.stderr.strip()}\n{log[-2000:]}")

    def start(self) -> LocalPostgres:
        self.folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            import stat

            from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

            self.user = "pgserver"
            entry = ensure_user_exists(self.user)
            ensure_prefix_permissions(self.folder)
            ensure_prefix_permissions(self.bin)
            ensure_folder_permissions(self.bin, stat.S_IXGRP | stat.S_IXOTH | stat.S_IRGRP | stat.S_IROTH)
            ensure_folder_permissions(self.bin.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
        if not (self.pgdata / "PG_VERSION").exists():
            self._run("initdb", "-D", str(self.pgdata), "--auth=trust", "--encoding=utf8", "-U", "postgres")
        opts = f"-h 127.0.0.1 -p {self.port} -k {self.folder}" + "".join(
            f" -c {k}={v}" for k, v in self.settings.items()
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.pgdata),
            "-w",
            "-t",
            "60",
            "-o",
            opts,
            "-l",
            str(self.folder / "postgres.log"),
            "start",
        )
        atexit.register(self.stop)
        return self

    def stop(self) -> None:
        if (self.pgdata / "postmaster.pid").exists():
            with contextlib.suppress(StoreError):  # already stopped
                self._run("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
