"""The Dagster instance the CLI uses: $HM_DATA_DIR/dagster_home with the repo's dagster.yaml."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from hm_pipeline.settings import dagster_home

REPO_ROOT = Path(__file__).resolve().parents[1]
INSTANCE_YAML = REPO_ROOT / "dagster.yaml"


def ensure_dagster_home(base: Path | None = None) -> Path:
    """Create the instance folder with dagster.yaml (refreshed when the repo's copy changes)
    and export DAGSTER_HOME unless the caller already set one."""
    if os.environ.get("DAGSTER_HOME"):
        return Path(os.environ["DAGSTER_HOME"])
    home = dagster_home(base)
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    if not target.exists() or target.read_bytes() != INSTANCE_YAML.read_bytes():
        shutil.copyfile(INSTANCE_YAML, target)
    os.environ["DAGSTER_HOME"] = str(home)
    return home
