"""A throwaway PostgreSQL cluster for the tests: initdb in a temp folder, a free loopback port, removed after.

PostgreSQL refuses to run as root (and CI runs as root), so as root the cluster belongs to an
unprivileged user — ``postgres`` when it exists, else one created for it — and its programs run
through ``runuser``. The server asks for a password (scram-sha-256), as a real one would.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

USER = "bridge"
PASSWORD = "s3cret-pg-pass"  # the tests check that it never shows in a log or an error


def _bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def available() -> str | None:
    """None when a cluster can be made here, else why not."""
    if _bin("initdb") is None or _bin("pg_ctl") is None:
        return "PostgreSQL is not installed (Debian: apt-get install -y postgresql)"
    return None


def _owner() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
        return "postgres"
    except KeyError:
        pass
    try:
        pwd.getpwnam("bridgetest")
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "bridgetest"], check=True)
    return "bridgetest"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    folder: Path
    port: int
    owner: str | None

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [*(["runuser", "-u", self.owner, "--"] if self.owner else []), *args]
        return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120)

    @classmethod
    def create(cls) -> Cluster:
        owner = _owner()
        folder = Path(tempfile.mkdtemp(prefix="bridge-pg-"))
        if owner:
            shutil.chown(folder, owner)
        (folder / "pw").write_text(PASSWORD)
        if owner:
            shutil.chown(folder / "pw", owner)
        cluster = cls(folder, free_port(), owner)
        initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
        assert initdb
        assert pg_ctl
        cluster._run(initdb, "-D", str(folder / "data"), "-U", USER, "--auth=scram-sha-256",
                     f"--pwfile={folder / 'pw'}", "-E", "UTF8", "--no-sync")
        opts = (f"-p {cluster.port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        cluster._run(pg_ctl, "-D", str(folder / "data"), "-o", opts, "-l", str(folder / "log"), "-w", "start")
        return cluster

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        pg_ctl = _bin("pg_ctl")
        assert pg_ctl
        try:
            self._run(pg_ctl, "-D", str(self.folder / "data"), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
