"""Dagster resources: where the raw files are and how strict ingest is."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg

from hm_pipeline.ingest import Calendar
from hm_pipeline.settings import CALENDAR_END, CALENDAR_START


class RawFiles(dg.ConfigurableResource):
    """The Kaggle-format input folder and the ingest rules' settings."""

    raw_dir: str
    calendar_start: str = CALENDAR_START.isoformat()
    calendar_end: str = CALENDAR_END.isoformat()
    max_reject_share: float = 0.01  # above this share of rows set aside, downstream stops

    def path(self, name: str) -> Path:
        """Path of one input file."""
        return Path(self.raw_dir) / name

    def calendar(self) -> Calendar:
        """The days a transaction may carry."""
        return Calendar(
            date.fromisoformat(self.calendar_start), date.fromisoformat(self.calendar_end)
        )


class Reports(dg.ConfigurableResource):
    """Where human-readable reports (CSV, PNG, markdown) are written."""

    reports_dir: str

    def path(self, *parts: str) -> Path:
        """A path under the reports folder; its parent folder exists."""
        p = Path(self.reports_dir).joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p


class ModelStore(dg.ConfigurableResource):
    """Trained models as state_dict files with their config, per model and week (models are
    never pickled through the IO manager)."""

    models_dir: str

    def folder(self, name: str, week: str) -> Path:
        """Where the model `name` trained for `week` lives."""
        return Path(self.models_dir) / name / week


class Warehouse(dg.ConfigurableResource):
    """The DuckDB database analysts query: recommendations and views over the lake."""

    path: str

    def path_obj(self) -> Path:
        """The database file as a Path."""
        return Path(self.path)
