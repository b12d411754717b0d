"""Real servers started by tests: PostgreSQL (Debian's package) on a loopback port."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def missing(what: str) -> None:
    """Skip a test that needs a system program, or fail where CI requires it."""
    if os.environ.get("HM_REQUIRE_SYSTEM_TESTS"):
        pytest.fail(f"{what} is missing (scripts/system-deps.sh installs it)")
    pytest.skip(f"{what} is missing (scripts/system-deps.sh installs it)")


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        missing("PostgreSQL (Debian package postgresql)")
    return found[-1]


@contextmanager
def postgres_server() -> Iterator[dict]:
    """A throwaway PostgreSQL server on 127.0.0.1 with a database `dagster`, in a temporary
    folder removed afterwards; yields the DAGSTER_PG_* settings. As root the server runs as the
    `postgres` user (initdb refuses root), so the folder sits directly under the temp dir."""
    initdb, pg_ctl, psql = _pg_bin("initdb"), _pg_bin("pg_ctl"), _pg_bin("psql")
    folder = Path(tempfile.mkdtemp(prefix="hm-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            missing("runuser")
        shutil.chown(folder, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", free_port()

    def run(*cmd: str) -> None:
        out = subprocess.run([*as_user, *cmd], capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {out.stdout}{out.stderr}")

    run(initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    opts = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(pg_ctl, "-D", str(data), "-o", opts, "-l", str(folder / "log"), "-w", "start")
    try:
        run(psql, "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-c",
            "CREATE DATABASE dagster")  # fmt: skip
        yield {
            "DAGSTER_PG_HOST": "127.0.0.1",
            "DAGSTER_PG_PORT": str(port),
            "DAGSTER_PG_USER": "postgres",
            "DAGSTER_PG_PASSWORD": "",
            "DAGSTER_PG_DB": "dagster",
        }
    finally:
        subprocess.run(
            [*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(folder, ignore_errors=True)
