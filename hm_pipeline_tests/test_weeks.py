"""The calendar of weeks and the weekly partitions."""

from __future__ import annotations

from datetime import date

import pytest

from hm_pipeline.partitions import weekly_partitions
from hm_pipeline.weeks import Calendar, parse_week, training_weeks, week_end, week_of


def test_weeks_run_wednesday_to_tuesday() -> None:
    assert week_of(date(2020, 9, 22)) == date(2020, 9, 16)  # a Tuesday
    assert week_of(date(2020, 9, 16)) == date(2020, 9, 16)
    assert week_of(date(2018, 9, 20)) == date(2018, 9, 19)
    assert week_end(date(2020, 9, 16)) == date(2020, 9, 22)


def test_parse_week_names_the_rule() -> None:
    assert parse_week("2020-09-16") == date(2020, 9, 16)
    with pytest.raises(ValueError, match="Thursday; weeks start on Wednesday"):
        parse_week("2020-09-17")
    with pytest.raises(ValueError, match="not a YYYY-MM-DD"):
        parse_week("16/09/2020")


def test_calendar_derives_from_the_last_day() -> None:
    cal = Calendar(last_day=date(2020, 9, 22))
    assert cal.prediction_week == date(2020, 9, 23)
    assert cal.validation_weeks[0] == date(2020, 8, 12)
    assert cal.validation_weeks[-1] == date(2020, 9, 16)
    assert len(cal.validation_weeks) == 6  # the weeks starting 2020-08-12 .. 2020-09-16
    assert cal.development_end == date(2020, 8, 12)
    assert cal.has_labels(date(2020, 9, 16)) and not cal.has_labels(date(2020, 9, 23))
    # one more week of data moves everything by a week
    later = Calendar(last_day=date(2020, 9, 29))
    assert later.prediction_week == date(2020, 9, 30)
    assert later.validation_weeks[0] == date(2020, 8, 19)


def test_training_weeks_are_before_the_week() -> None:
    assert training_weeks(date(2020, 9, 16), 3) == [
        date(2020, 9, 9),
        date(2020, 9, 2),
        date(2020, 8, 26),
    ]


def test_partitions_are_warmup_validation_and_prediction_weeks() -> None:
    cal = Calendar(last_day=date(2020, 9, 22))
    assert weekly_partitions.get_partition_keys() == [str(w) for w in cal.partition_weeks]
    assert cal.warmup_weeks == [date(2020, 7, 29), date(2020, 8, 5)]
    assert weekly_partitions.get_partition_keys()[0] == "2020-07-29"
    assert weekly_partitions.get_partition_keys()[-1] == "2020-09-23"
