"""A private, throw-away PostgreSQL cluster for fault tests (initdb + pg_ctl, 127.0.0.1 only).

We run as root, so the server runs as the ``postgres`` OS user via ``su postgres -c``. Binaries come
from ``$PGBIN`` or ``/usr/lib/postgresql/*/bin``; ``PgCluster.unavailable()`` says why it cannot run.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def _bindir() -> Path | None:
    cands = [os.environ["PGBIN"]] if os.environ.get("PGBIN") else []
    cands += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True)
    for c in cands:
        if (Path(c) / "initdb").is_file() and (Path(c) / "pg_ctl").is_file():
            return Path(c)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgCluster:
    def __init__(self) -> None:
        bindir = _bindir()
        assert bindir is not None
        self.bin = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="dp-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        pw = pwd.getpwnam("postgres")
        os.chown(self.dir, pw.pw_uid, pw.pw_gid)

    @staticmethod
    def unavailable() -> str | None:
        if _bindir() is None:
            return "no PostgreSQL binaries (set PGBIN or install postgresql)"
        if os.geteuid() != 0:
            return "needs root to run the server as the 'postgres' user"
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "no 'postgres' OS user"
        if shutil.which("su") is None:
            return "no 'su' binary"
        return None

    def _su(self, cmd: str) -> None:
        subprocess.run(["su", "postgres", "-c", cmd], check=True, capture_output=True, timeout=120)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/diffprompt"

    def init(self) -> None:
        self._su(f"{self.bin}/initdb -D {self.data} -A trust -U postgres --no-sync")
        self.start()
        import psycopg

        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True) as c:
            c.execute("CREATE DATABASE diffprompt")

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._su(f"{self.bin}/pg_ctl -D {self.data} -o {shlex.quote(opts)} -l {self.dir}/log -w start")

    def stop(self) -> None:
        self._su(f"{self.bin}/pg_ctl -D {self.data} -m fast -w stop")

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
