"""Learned sources retrained every n weeks: a week between two training weeks is served by the
earlier week's model (restored, or trained for that week and stored), with its inputs read at
the week itself."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from hm_pipeline.candidates import SourceContext
from hm_pipeline.candidates.learned import (
    LEARNED_SOURCES,
    LearnedSource,
    keep_model,
    source_for_week,
    training_week,
)
from hm_pipeline.splits import labels as week_labels

WEEK = date(2020, 9, 2)
EARLIER = WEEK - timedelta(weeks=2)
BY_NAME = {cls.name: cls for cls in LEARNED_SOURCES}


def test_training_week_is_the_latest_retraining_week() -> None:
    origin = date(2020, 8, 5)
    assert training_week(date(2020, 9, 2), 1, origin) == date(2020, 9, 2)
    assert training_week(date(2020, 9, 2), 4, origin) == date(2020, 9, 2)
    assert training_week(date(2020, 9, 9), 4, origin) == date(2020, 9, 2)
    assert training_week(date(2020, 9, 23), 4, origin) == date(2020, 9, 2)
    assert training_week(date(2020, 9, 30), 4, origin) == date(2020, 9, 30)
    assert training_week(date(2020, 8, 26), 4, origin) == date(2020, 8, 5)
    with pytest.raises(ValueError, match="retrain_every_weeks"):
        training_week(WEEK, 0, origin)


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_a_week_served_by_an_earlier_weeks_model(name, tiny_tables, tmp_path: Path) -> None:
    cls: type[LearnedSource] = BY_NAME[name]
    tx = tiny_tables["transactions"].lazy()
    ctx = SourceContext(tiny_tables["articles"], tiny_tables["customers"])
    buyers = week_labels(tx, WEEK).collect()["customer_id"].unique().sort()
    folder = tmp_path / str(EARLIER)

    src, served_by, fresh = source_for_week(cls, 50, WEEK, EARLIER, folder, tx, ctx)
    assert (served_by, fresh) == (EARLIER, True)
    stored = json.loads((folder / "config.json").read_text())
    assert stored["week"] == str(EARLIER)  # trained for the earlier week, stored under it
    out = src.generate(tx, buyers, WEEK, ctx)
    assert out.height > 0 and out.group_by("customer_id").len()["len"].max() <= 50

    # the next week served by it restores the stored weights instead of training again
    again, served_by, fresh = source_for_week(cls, 50, WEEK, EARLIER, folder, tx, ctx)
    assert (served_by, fresh) == (EARLIER, False)
    assert again.generate(tx, buyers, WEEK, ctx).equals(out)

    # a week's folder that points at the model restores it
    pointer = keep_model(src, WEEK, EARLIER, lambda w: tmp_path / w)
    assert pointer == tmp_path / str(WEEK) and not (pointer / "model.pt").exists()
    via_pointer = cls.restore(pointer, tx, WEEK, ctx)
    via_pointer.k = 50
    assert via_pointer.generate(tx, buyers, WEEK, ctx).equals(out)

    # the inputs are the week's: the same weights ranking as of the training week differ
    # (NeuMF's only input is its pool of recent sellers, the whole tiny catalogue either way)
    if name != "neumf":
        stale = cls.restore(folder, tx, EARLIER, ctx)
        stale.k = 50
        assert not stale.generate(tx, buyers, EARLIER, ctx).equals(out)

    # other settings than the stored model's: trained again, not restored
    stored["window_days"] = stored.get("window_days", 0) + 7
    stored["model"]["epochs"] = stored["model"]["epochs"] + 1
    (folder / "config.json").write_text(json.dumps(stored))
    _, _, fresh = source_for_week(cls, 50, WEEK, EARLIER, folder, tx, ctx)
    assert fresh


def test_a_week_that_is_its_own_training_week_trains_in_generate(tiny_tables, tmp_path) -> None:
    cls = BY_NAME["multvae"]
    ctx = SourceContext(tiny_tables["articles"], tiny_tables["customers"])
    tx = tiny_tables["transactions"].lazy()
    src, served_by, fresh = source_for_week(cls, 50, WEEK, WEEK, tmp_path / "m", tx, ctx)
    assert (served_by, fresh) == (WEEK, False)
    assert src.model is None and not (tmp_path / "m").exists()
