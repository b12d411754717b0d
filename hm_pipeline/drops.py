"""Weekly drops of transactions: new CSV files (transactions_train.csv's format) that arrive in
`$HM_DATA_DIR/raw/drops/` and are appended to the transactions table without rewriting it.

The raw folder's calendar state (`settings.calendar_state`) records the data's last day and
every appended drop with the day it followed, so re-appending a drop validates it against the
same window and the calendar (and with it the weekly partitions) grows with the data.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from hm_pipeline.schema import TRANSACTIONS_FILE
from hm_pipeline.settings import calendar_state, write_calendar_state
from hm_pipeline.weeks import week_of

DROPS_DIR = "drops"  # watched by the sensor
UPCOMING_DIR = "upcoming"  # synth --drops writes the final weeks here, to be moved into drops/
DROP_DAYS = 7  # a drop holds at most the week after the data's last day


def drop_name(path: Path) -> str:
    """A drop's name (its partition key): the file name without `.csv`."""
    return Path(path).name.removesuffix(".csv")


def list_drops(raw: Path) -> list[str]:
    """Names of the drop files waiting or appended, in name (arrival) order."""
    folder = Path(raw) / DROPS_DIR
    if not folder.exists():
        return []
    return sorted(drop_name(p) for p in folder.glob("*.csv") if not p.name.startswith("."))


def drop_path(raw: Path, name: str) -> Path:
    """The CSV file of a drop."""
    return Path(raw) / DROPS_DIR / f"{name}.csv"


@dataclass(frozen=True)
class DropWindow:
    """The days a drop may hold: after the data's last day when it arrived, one week at most."""

    after: date

    @property
    def first(self) -> date:
        return self.after + timedelta(days=1)

    @property
    def last(self) -> date:
        return self.after + timedelta(days=DROP_DAYS)


def window_for(raw: Path, name: str) -> DropWindow:
    """The window a drop is validated against: the one recorded when it was appended, or the
    week after the data's current last day for a new drop."""
    state = calendar_state(raw)
    done = state["drops"].get(name)
    if done is not None:
        return DropWindow(date.fromisoformat(done["after"]))
    return DropWindow(date.fromisoformat(state["last_day"]))


def record_drop(raw: Path, name: str, window: DropWindow, last_day: date | None, rows: int) -> dict:
    """Record an appended drop; the data's last day becomes the drop's last day if later."""
    state = calendar_state(raw)
    new_last = max(date.fromisoformat(state["last_day"]), last_day or window.after)
    state["last_day"] = new_last.isoformat()
    state["drops"][name] = {
        "after": window.after.isoformat(),
        "last_day": (last_day or window.after).isoformat(),
        "rows": rows,
    }
    write_calendar_state(state, raw)
    return state


def stale_weeks(first_new_day: date, partition_weeks: list[date]) -> list[date]:
    """The weeks that new transactions from `first_new_day` on make stale: the week holding it
    (its labels change) and every later week (their history changes). Earlier weeks read only
    data before their start, so they stay as they are."""
    start = week_of(first_new_day)
    return [w for w in partition_weeks if w >= start]


def split_final_weeks(raw: Path, n_weeks: int) -> list[Path]:
    """Move the last `n_weeks` weeks of transactions_train.csv into one CSV per week under
    `raw/upcoming/` (same format and bytes), and record the shortened data's last day.

    Move a file into `raw/drops/` to have it arrive; the sensor appends it."""
    if n_weeks < 1:
        raise ValueError("n_weeks must be at least 1")
    raw = Path(raw)
    src = raw / TRANSACTIONS_FILE
    table = pl.scan_csv(src, infer_schema=False)  # strings: the bytes stay as they are
    day = pl.col("t_dat").str.to_date("%Y-%m-%d")
    last = table.select(day.max()).collect(engine="streaming").item()
    first_drop = week_of(last) - timedelta(days=7 * (n_weeks - 1))
    upcoming = raw / UPCOMING_DIR
    upcoming.mkdir(parents=True, exist_ok=True)
    written = []
    for i in range(n_weeks):  # streamed: a full-scale file never sits in memory
        start = first_drop + timedelta(days=7 * i)
        path = upcoming / f"transactions_{start.isoformat()}.csv"
        table.filter(day.is_between(start, start + timedelta(days=6))).sink_csv(path)
        written.append(path)
    tmp = src.with_name(f".{src.name}.tmp")
    table.filter(day < first_drop).sink_csv(tmp)
    os.replace(tmp, src)
    write_calendar_state(
        {"last_day": (first_drop - timedelta(days=1)).isoformat(), "drops": {}}, raw
    )
    return written
