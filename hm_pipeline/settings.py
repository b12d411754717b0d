"""Where data lives: one setting, `HM_DATA_DIR`, defaulting to ./data."""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

DATA_DIR_ENV = "HM_DATA_DIR"
DEFAULT_DATA_DIR = "data"

# The competition calendar: the first and last day of transactions_train.csv. The weeks
# (validation and prediction) derive from the last day, which grows as weekly drops of
# transactions are appended (see calendar_end).
CALENDAR_START = date(2018, 9, 20)
KAGGLE_END = date(2020, 9, 22)
CALENDAR_FILE = "calendar.json"  # in the raw folder: the data's last day and appended drops


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


def calendar_state(raw: Path | None = None) -> dict:
    """The raw folder's calendar state: `{"last_day": ..., "drops": {name: {...}}}`.

    Written by `hm-pipeline synth --drops` (a world whose final weeks arrive later) and by every
    appended drop; absent for the Kaggle files, whose last day is 2020-09-22."""
    path = (Path(raw) if raw is not None else raw_dir()) / CALENDAR_FILE
    if not path.exists():
        return {"last_day": KAGGLE_END.isoformat(), "drops": {}}
    try:
        state = json.loads(path.read_text())
        date.fromisoformat(state["last_day"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(
            f"{path}: not a calendar state (needs a 'last_day' YYYY-MM-DD): {exc}"
        ) from exc
    state.setdefault("drops", {})
    return state


def write_calendar_state(state: dict, raw: Path) -> None:
    """Replace the raw folder's calendar state atomically."""
    path = Path(raw) / CALENDAR_FILE
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
    os.replace(tmp, path)


def calendar_end() -> date:
    """The last day with transactions: $HM_CALENDAR_END, else the raw folder's calendar state,
    else 2020-09-22 (the Kaggle data)."""
    if os.environ.get("HM_CALENDAR_END"):
        return date.fromisoformat(os.environ["HM_CALENDAR_END"])
    return date.fromisoformat(calendar_state()["last_day"])


CALENDAR_END = calendar_end()
"""The calendar as this process loaded it; the weekly partitions follow it, so a grown calendar
shows after the code location reloads (runs always start a fresh process)."""
