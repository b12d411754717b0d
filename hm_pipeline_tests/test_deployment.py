"""Beyond one machine, by configuration alone: the instance in a real PostgreSQL server
(deploy/dagster-postgres.yaml), and steps on a real dask cluster (HM_EXECUTOR=dask)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from hm_pipeline_tests.servers import postgres_server

REPO = Path(__file__).resolve().parents[1]
DAGSTER = str(Path(sys.executable).parent / "dagster")
WEEK = "2020-09-16"
WEEK_ASSETS = "week_split,labels,customers_to_score,customer_features,article_features," + (
    "candidates_repurchase,candidates_popularity_last_week"
)


def _materialize(env: dict, *args: str) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [DAGSTER, "asset", "materialize", "-m", "hm_pipeline.definitions", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out


def test_the_instance_lives_in_postgresql(data_dir: Path, tmp_path_factory) -> None:
    home = tmp_path_factory.mktemp("home")
    shutil.copyfile(REPO / "deploy" / "dagster-postgres.yaml", home / "dagster.yaml")
    with postgres_server() as pg:
        env = os.environ | pg | {"DAGSTER_HOME": str(home), "HM_DATA_DIR": str(data_dir)}
        _materialize(env, "--select", "group:raw")
        _materialize(env, "--select", "week_split,labels", "--partition", WEEK)
        # the records are in PostgreSQL, read back through a fresh instance
        code = (
            "import dagster as dg; i = dg.DagsterInstance.get(); "
            "print(type(i.run_storage).__name__, type(i.event_log_storage).__name__); "
            "print(sorted(r.status.value for r in i.get_runs())); "
            "print(sorted(i.get_materialized_partitions(dg.AssetKey('labels')))); "
            "print(i.get_latest_materialization_event(dg.AssetKey('transactions')) is not None)"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        lines = out.stdout.splitlines()
        assert lines[0] == "PostgresRunStorage PostgresEventLogStorage"
        assert lines[1] == "['SUCCESS', 'SUCCESS']"
        assert lines[2] == f"['{WEEK}']"
        assert lines[3] == "True"
        # and in the server's tables, not in SQLite files in the instance folder
        psql = sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"))[-1]
        rows = subprocess.run(
            [str(psql), "-h", pg["DAGSTER_PG_HOST"], "-p", pg["DAGSTER_PG_PORT"], "-U",
             "postgres", "-d", "dagster", "-tAc",
             "SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert int(rows.stdout.strip()) >= 9  # 7 raw tables, the week's split and labels
        assert not list(home.rglob("*.db"))


def test_one_week_runs_on_a_dask_cluster(data_dir: Path, tmp_path_factory) -> None:
    distributed = pytest.importorskip("distributed")
    home = tmp_path_factory.mktemp("home")
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        env = os.environ | {
            "DAGSTER_HOME": str(home),
            "HM_DATA_DIR": str(data_dir),
            "HM_EXECUTOR": "dask",
            "HM_DASK_ADDRESS": cluster.scheduler_address,
        }
        with distributed.get_task_stream(client) as stream:
            _materialize(env, "--select", "group:raw")
            _materialize(env, "--select", WEEK_ASSETS, "--partition", WEEK)
        workers = {t["worker"] for t in stream.data}
        ran = {t["key"] if isinstance(t["key"], str) else t["key"][0] for t in stream.data}
    # every step ran as a task on the cluster's worker processes
    assert len(stream.data) >= 4 + len(WEEK_ASSETS.split(","))
    assert workers and all(w.startswith("tcp://127.0.0.1") for w in workers)
    assert any("customer_features" in k for k in ran), ran
    # what the cluster wrote is what a local run writes
    ref = tmp_path_factory.mktemp("ref")
    shutil.copytree(data_dir / "raw", ref / "raw")
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"} | {"HM_DATA_DIR": str(ref)}
    _materialize(env, "--select", "group:raw")
    _materialize(env, "--select", WEEK_ASSETS, "--partition", WEEK)
    for name in ("customer_features", "candidates_repurchase", "labels"):
        a = pl.read_parquet(data_dir / "lake" / name / f"{WEEK}.parquet")
        b = pl.read_parquet(ref / "lake" / name / f"{WEEK}.parquet")
        assert a.equals(b), name
