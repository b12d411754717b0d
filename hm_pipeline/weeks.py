"""The calendar of weeks. A week runs Wednesday to Tuesday, as in the competition, and is named
by the date of its Wednesday everywhere (`2020-09-16` is 2020-09-16 .. 2020-09-22)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

WEDNESDAY = 2  # date.weekday()
N_TEST_WEEKS = 6  # the seed's test set: the weeks starting 2020-08-12 .. 2020-09-16
N_WARMUP_WEEKS = 2  # weeks before the test set with candidates, so the first test week's
# ranker has training weeks (its candidates are built like any week's, from the past only)


def week_of(d: date) -> date:
    """The Wednesday that starts the week holding `d`."""
    return d - timedelta(days=(d.weekday() - WEDNESDAY) % 7)


def parse_week(key: str) -> date:
    """A partition key 'YYYY-MM-DD' as the date of its Wednesday; errors name the rule."""
    try:
        d = date.fromisoformat(key)
    except ValueError as exc:
        raise ValueError(f"'{key}' is not a YYYY-MM-DD date") from exc
    if d.weekday() != WEDNESDAY:
        raise ValueError(f"{d} is a {d:%A}; weeks start on Wednesday (e.g. 2020-09-16)")
    return d


def week_end(week: date) -> date:
    """The last day (Tuesday) of a week."""
    return week + timedelta(days=6)


@dataclass(frozen=True)
class Calendar:
    """Development, validation and prediction weeks derived from the data's last day."""

    last_day: date  # the last day with transactions (2020-09-22 for the real data)
    n_test_weeks: int = N_TEST_WEEKS
    n_warmup_weeks: int = N_WARMUP_WEEKS

    @property
    def prediction_week(self) -> date:
        """The week after the data: it has no labels."""
        return week_of(self.last_day) + timedelta(days=7)

    @property
    def validation_weeks(self) -> list[date]:
        """The test set's weeks, oldest first (2020-08-12 .. 2020-09-16 for the real data)."""
        last_full = self.prediction_week - timedelta(days=7)
        return [last_full - timedelta(days=7 * i) for i in reversed(range(self.n_test_weeks))]

    @property
    def warmup_weeks(self) -> list[date]:
        """Weeks before the validation weeks that only feed the rankers' training sets."""
        first = self.validation_weeks[0]
        return [first - timedelta(days=7 * i) for i in reversed(range(1, self.n_warmup_weeks + 1))]

    @property
    def partition_weeks(self) -> list[date]:
        """Every week an asset is partitioned by: warm-up weeks, validation weeks and the
        prediction week."""
        return [*self.warmup_weeks, *self.validation_weeks, self.prediction_week]

    @property
    def development_end(self) -> date:
        """The first day not in the development set."""
        return self.validation_weeks[0]

    def has_labels(self, week: date) -> bool:
        """Whether the data holds the week's purchases."""
        return week <= self.last_day


def training_weeks(week: date, k: int) -> list[date]:
    """The k weeks before `week` that a ranker for `week` learns from, most recent first."""
    return [week - timedelta(days=7 * i) for i in range(1, k + 1)]
