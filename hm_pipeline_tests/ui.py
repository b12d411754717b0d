"""The Dagster UI for tests: `dagster dev` on a free loopback port, and Debian's headless
Chromium driven by playwright (no browser download)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hm_pipeline_tests.servers import free_port, missing

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = [  # as root, offline: no sandbox, no background connections
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    """Debian's chromium, or a skip (a failure where CI requires it)."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        missing("chromium (Debian package chromium)")
    return path


@contextmanager
def dagster_dev(home: Path, data: Path, timeout: float = 180) -> Iterator[str]:
    """`dagster dev` (webserver and daemon) on the pipeline with the instance in `home`;
    yields the UI's URL and stops the whole process group afterwards."""
    port = free_port()
    env = os.environ | {"DAGSTER_HOME": str(home), "HM_DATA_DIR": str(data)}
    log = open(home / "dagster-dev.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster"), "dev", "-m", "hm_pipeline.definitions",
         "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"dagster dev exited: {(home / 'dagster-dev.log').read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/server_info", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"dagster dev did not answer on {url} in {timeout:.0f}s")
            time.sleep(1)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def dismiss_newsletter(page) -> None:
    """The UI's first-visit "Join the Dagster community" dialog covers the page."""
    skip = page.get_by_role("button", name="Skip")
    try:
        skip.wait_for(state="visible", timeout=4000)
    except Exception:  # playwright's TimeoutError: the dialog did not come
        return
    skip.click()
