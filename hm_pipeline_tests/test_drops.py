"""Weekly drops: synth holds the final weeks back, the sensor notices a drop, the append
validates it against the week after the data's last day, the table grows without rewriting
history, the calendar grows, and the stale weeks are requested."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from hm_pipeline import drops
from hm_pipeline.definitions import all_assets, all_checks, build_defs
from hm_pipeline.schema import TRANSACTIONS_FILE
from hm_pipeline.sensors import plan
from hm_pipeline.settings import calendar_state
from hm_pipeline_tests.conftest import run_dagster
from hm_pipeline_tests.test_assets import _materialize, _resources

DROP1 = "transactions_2020-09-09"
DROP2 = "transactions_2020-09-16"


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


@pytest.fixture
def drop_world(data_dir: Path) -> Path:
    """The tiny world with its final two weeks held back as drops (as `synth --drops 2`)."""
    raw = data_dir / "raw"
    drops.split_final_weeks(raw, 2)
    return data_dir


def test_split_keeps_every_row_once(data_dir: Path, tiny_world: Path) -> None:
    raw = data_dir / "raw"
    files = drops.split_final_weeks(raw, 2)
    assert [f.name for f in files] == [f"{DROP1}.csv", f"{DROP2}.csv"]
    original = _lines(tiny_world / TRANSACTIONS_FILE)
    base = _lines(raw / TRANSACTIONS_FILE)
    parts = [_lines(f) for f in files]
    assert all(p[0] == original[0] for p in [base, *parts])  # same header
    assert base[1:] + parts[0][1:] + parts[1][1:] == original[1:]  # same bytes, same order
    assert all(p[1:] for p in parts)
    assert max(r.split(",")[0] for r in base[1:]) <= "2020-09-08"
    assert {r.split(",")[0] for r in parts[1][1:]} <= {f"2020-09-{d}" for d in range(16, 23)}
    assert calendar_state(raw) == {"last_day": "2020-09-08", "drops": {}}


def test_stale_weeks_are_the_drops_week_and_later() -> None:
    weeks = [date(2020, 9, 2), date(2020, 9, 9), date(2020, 9, 16)]
    assert drops.stale_weeks(date(2020, 9, 9), weeks) == weeks[1:]
    assert drops.stale_weeks(date(2020, 9, 12), weeks) == weeks[1:]  # a Saturday
    assert drops.stale_weeks(date(2020, 9, 23), weeks) == []


def test_plan_requests_known_weeks_and_keeps_new_ones_waiting(drop_world: Path) -> None:
    raw = drop_world / "raw"
    assert plan(raw, set(), ["2020-09-09"], {})[0] == []  # nothing arrived yet
    (raw / drops.DROPS_DIR).mkdir()
    shutil.move(raw / drops.UPCOMING_DIR / f"{DROP1}.csv", raw / drops.DROPS_DIR)
    new, ready, reports, cursor = plan(raw, set(), ["2020-09-09"], {})
    assert (new, ready, reports) == ([DROP1], [], False)  # not appended yet: nothing stale
    # once appended (the calendar state records it), the drop's week and the new week are stale
    drops.record_drop(raw, DROP1, drops.window_for(raw, DROP1), date(2020, 9, 15), 10)
    new, ready, reports, cursor = plan(raw, {DROP1}, ["2020-09-02", "2020-09-09"], cursor)
    assert (new, ready, reports) == ([], ["2020-09-09"], False)
    assert cursor == {"handled": [DROP1], "pending": ["2020-09-16"]}
    # the code location reloaded with the grown calendar: the new week runs, then the reports
    new, ready, reports, cursor = plan(raw, {DROP1}, ["2020-09-09", "2020-09-16"], cursor)
    assert (new, ready, reports) == ([], ["2020-09-16"], True)
    assert plan(raw, {DROP1}, ["2020-09-09", "2020-09-16"], cursor)[1] == []  # once only


def _append(data: Path, instance: dg.DagsterInstance, name: str) -> dg.ExecuteInProcessResult:
    instance.add_dynamic_partitions("transaction_drops", [name])
    return dg.materialize(
        [*all_assets, *all_checks],
        resources=_resources(data),
        selection=dg.AssetSelection.groups("drops"),
        partition_key=name,
        instance=instance,
        raise_on_error=False,
    )


def _transactions(data: Path) -> pl.DataFrame:
    from hm_pipeline.io_manager import ParquetIOManager

    io = ParquetIOManager(base_dir=str(data / "lake"), raw_dir=str(data / "raw"))
    from dagster._core.types.dagster_type import resolve_dagster_type

    ctx = dg.build_input_context(
        asset_key=dg.AssetKey("transactions"), dagster_type=resolve_dagster_type(pl.LazyFrame)
    )
    return io.load_input(ctx).collect()


def test_sensor_appends_a_drop_and_requests_the_stale_weeks(
    drop_world: Path, tiny_tables: dict
) -> None:
    data, raw = drop_world, drop_world / "raw"
    instance = dg.DagsterInstance.ephemeral()
    assert _materialize(data).success  # the raw tables
    base = pl.read_parquet(data / "lake" / "transactions.parquet")
    full = tiny_tables["transactions"]
    assert base["t_dat"].max() <= date(2020, 9, 8)
    base_bytes = (data / "lake" / "transactions.parquet").read_bytes()

    defs = build_defs()
    sensor = defs.resolve_sensor_def("transaction_drop_sensor")
    ctx = dg.build_sensor_context(
        instance=instance, resources={"raw_files": _resources(data)["raw_files"]}
    )
    assert not sensor(ctx).run_requests  # nothing in raw/drops yet

    (raw / drops.DROPS_DIR).mkdir()
    shutil.move(raw / drops.UPCOMING_DIR / f"{DROP1}.csv", raw / drops.DROPS_DIR)
    ctx = dg.build_sensor_context(
        instance=instance, resources={"raw_files": _resources(data)["raw_files"]}
    )
    result = sensor(ctx)
    assert [(r.job_name, r.partition_key) for r in result.run_requests] == [("append_drop", DROP1)]
    assert result.dynamic_partitions_requests[0].partition_keys == [DROP1]

    res = _append(data, instance, DROP1)
    assert res.success
    assert all(c.passed for c in res.get_asset_check_evaluations())
    # history untouched, the drop appended, every row of the week now in the table
    assert (data / "lake" / "transactions.parquet").read_bytes() == base_bytes
    table = _transactions(data)
    expected = full.filter(pl.col("t_dat") <= date(2020, 9, 15))
    assert table.height == expected.height
    assert table.equals(expected)
    state = calendar_state(raw)
    assert state["last_day"] == "2020-09-15"
    assert state["drops"][DROP1]["after"] == "2020-09-08"

    ctx = dg.build_sensor_context(
        instance=instance,
        cursor=ctx.cursor,
        resources={"raw_files": _resources(data)["raw_files"]},
    )
    result = sensor(ctx)
    requested = [(r.job_name, r.partition_key) for r in result.run_requests]
    # this process loaded the Kaggle calendar, which already knows both weeks
    from hm_pipeline.ranking.shards import shard_keys

    assert requested == [
        ("weekly_pipeline", "2020-09-09"),
        ("weekly_pipeline", "2020-09-16"),
        *[("prediction", s) for s in shard_keys()],
        ("reports", None),
    ]
    assert json.loads(result.cursor)["handled"] == [DROP1]

    # a re-append validates against the window the drop had: same table, same calendar
    assert _append(data, instance, DROP1).success
    assert _transactions(data).equals(expected)
    assert calendar_state(raw)["last_day"] == "2020-09-15"


def test_a_drop_rewriting_history_is_set_aside(drop_world: Path) -> None:
    data, raw = drop_world, drop_world / "raw"
    instance = dg.DagsterInstance.ephemeral()
    assert _materialize(data).success  # the raw tables
    # a "drop" that repeats last month's rows: every row is before the data's last day
    (raw / drops.DROPS_DIR).mkdir()
    old = pl.read_csv(raw / TRANSACTIONS_FILE, infer_schema=False).tail(50)
    old.write_csv(raw / drops.DROPS_DIR / "transactions_old.csv")
    res = _append(data, instance, "transactions_old")
    (check,) = res.get_asset_check_evaluations()
    assert not check.passed
    rejects = pl.read_parquet(
        data / "lake" / "transaction_drops_rejects" / "transactions_old.parquet"
    )
    assert rejects.height == 50
    assert set(rejects["rule"]) == {"date outside calendar"}
    assert set(rejects["file"]) == {"transactions_old.csv"}
    # the calendar does not grow and the table reads as before
    assert calendar_state(raw)["drops"] == {}
    assert _transactions(data)["t_dat"].max() <= date(2020, 9, 8)


def test_a_grown_calendar_moves_the_weeks_in_a_new_process(drop_world: Path) -> None:
    """Runs start a fresh process: the partitions there follow the raw folder's calendar."""
    raw = drop_world / "raw"
    out = run_dagster(
        "definitions", "validate", "-m", "hm_pipeline.definitions", data_dir=drop_world
    )
    assert out.returncode == 0, out.stderr[-2000:]
    import subprocess
    import sys

    code = "from hm_pipeline.partitions import CALENDAR as C; print(C.prediction_week)"

    def prediction_week() -> str:
        env = {"HM_DATA_DIR": str(drop_world), "PATH": str(Path(sys.executable).parent)}
        return subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        ).stdout.strip()

    assert prediction_week() == "2020-09-09"
    drops.record_drop(raw, DROP1, drops.window_for(raw, DROP1), date(2020, 9, 15), 1)
    assert prediction_week() == "2020-09-16"
