"""Partitions: the warm-up weeks, the validation weeks and the prediction week, named by their
Wednesday."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

from hm_pipeline.settings import CALENDAR_END
from hm_pipeline.weeks import Calendar

CALENDAR = Calendar(last_day=CALENDAR_END)

weekly_partitions = dg.WeeklyPartitionsDefinition(
    start_date=CALENDAR.partition_weeks[0].isoformat(),
    end_date=(CALENDAR.prediction_week + timedelta(days=7)).isoformat(),
    day_offset=3,  # Wednesday (Sunday = 0)
)
