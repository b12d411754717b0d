"""Where data lives: one setting, `HM_DATA_DIR`, defaulting to ./data."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

DATA_DIR_ENV = "HM_DATA_DIR"
DEFAULT_DATA_DIR = "data"

# The competition calendar: the first and last day of transactions_train.csv. The weeks
# (validation and prediction) derive from the last day; HM_CALENDAR_END moves it when the data
# grows.
CALENDAR_START = date(2018, 9, 20)
CALENDAR_END = date.fromisoformat(os.environ.get("HM_CALENDAR_END") or "2020-09-22")


def data_dir() -> Path:
    """The data folder: $HM_DATA_DIR if set, else ./data, as an absolute path."""
    return Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR).resolve()


def raw_dir(base: Path | None = None) -> Path:
    """Folder holding the Kaggle-format input files."""
    return (base or data_dir()) / "raw"


def lake_dir(base: Path | None = None) -> Path:
    """Folder holding the typed parquet tables written by the IO manager."""
    return (base or data_dir()) / "lake"


def reports_dir(base: Path | None = None) -> Path:
    """Folder holding reports and plots."""
    return (base or data_dir()) / "reports"


def dagster_home(base: Path | None = None) -> Path:
    """The Dagster instance folder used by the CLI and `make dev`."""
    return (base or data_dir()) / "dagster_home"
