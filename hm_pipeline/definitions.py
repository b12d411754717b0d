"""The one Definitions object of the code location."""

from __future__ import annotations

import os

import dagster as dg

from hm_pipeline.assets import (
    candidates,
    drops,
    eda,
    embeddings,
    evaluation,
    ranking,
    raw,
    recommendations,
    training,
    weekly,
)
from hm_pipeline.io_manager import ParquetIOManager
from hm_pipeline.partitions import weekly_partitions
from hm_pipeline.progress import step_progress
from hm_pipeline.resources import ModelStore, RawFiles, Reports, Warehouse
from hm_pipeline.sensors import build_sensor
from hm_pipeline.settings import data_dir, lake_dir, raw_dir, reports_dir

MODULES = [
    raw,
    drops,
    weekly,
    embeddings,
    candidates,
    ranking,
    evaluation,
    recommendations,
    eda,
    training,
]
all_assets = dg.load_assets_from_modules(MODULES)
all_checks = dg.load_asset_checks_from_modules(MODULES)

REPORTS = (  # not weekly: they read every week's results
    "evaluation_summary",
    "eda_report",
    "negative_strategy_report",
    "recommendations",
)

raw_job = dg.define_asset_job(
    "raw_tables",
    selection=dg.AssetSelection.groups(raw.GROUP),
    description="Kaggle files -> typed tables",
)
append_drop_job = dg.define_asset_job(
    "append_drop",
    selection=dg.AssetSelection.assets(*drops.transaction_drops.keys),
    partitions_def=drops.drop_partitions,
    description="Validate one weekly drop of transactions (raw/drops/<name>.csv) and append it "
    "to the transactions table; started by transaction_drop_sensor.",
)
WEEKLY = [
    key
    for a in all_assets
    if isinstance(a, dg.AssetsDefinition) and a.partitions_def == weekly_partitions
    for key in a.keys
]
# what a week's rankers read from earlier weeks: everything weekly but rankers and evaluation
FEATURE_LEVEL = [
    k
    for k in WEEKLY
    if k.path[0]
    not in (
        "ranker_models",
        "ranker_lightgbm",
        "ranker_dlrm",
        "evaluation_report",
        "sampled_evaluation",
    )
]
catalogue_job = dg.define_asset_job(
    "catalogue",
    selection=dg.AssetSelection.all()
    - dg.AssetSelection.assets(*WEEKLY)
    - dg.AssetSelection.assets(*REPORTS)
    - dg.AssetSelection.assets(*drops.transaction_drops.keys)
    - dg.AssetSelection.assets(ranking.prediction_scores),
    description="Raw tables and the catalogue's embeddings (text, image, metadata): what every "
    "week reads and nothing recomputes per week.",
)
weekly_pipeline = dg.define_asset_job(
    "weekly_pipeline",
    selection=dg.AssetSelection.assets(*WEEKLY),
    partitions_def=weekly_partitions,
    description="Everything partitioned by week, for one week (`hm-pipeline run --week`); "
    "reads the catalogue job's assets.",
)
prediction_job = dg.define_asset_job(
    "prediction",
    selection=dg.AssetSelection.assets(ranking.prediction_scores),
    partitions_def=ranking.customer_shards,
    description="Both rankers' lists for one shard of the prediction week's customers; a "
    "backfill over the shards spreads them across workers (then `reports` gathers them).",
)
reports_job = dg.define_asset_job(
    "reports",
    selection=dg.AssetSelection.assets(*REPORTS),
    description="The EDA report, the evaluation summary across the weeks evaluated so far and "
    "NeuMF under each negative strategy.",
)

weekly_schedule = dg.build_schedule_from_partitioned_job(
    weekly_pipeline,
    name="weekly_pipeline_schedule",
    description="Each Wednesday, the week that has just completed (the newest partition).",
)
drop_sensor = build_sensor(
    weekly_partitions, [append_drop_job, weekly_pipeline, prediction_job, reports_job]
)


def resources() -> dict:
    """Resources pointing at $HM_DATA_DIR (default ./data)."""
    return {
        "io_manager": ParquetIOManager(base_dir=str(lake_dir()), raw_dir=str(raw_dir())),
        "raw_files": RawFiles(raw_dir=str(raw_dir())),
        "reports": Reports(reports_dir=str(reports_dir())),
        "model_store": ModelStore(models_dir=str(data_dir() / "models")),
        "warehouse": Warehouse(path=str(data_dir() / "hm.duckdb")),
    }


def executor() -> dg.ExecutorDefinition:
    """The executor, chosen by configuration: HM_EXECUTOR=multiprocess (default; two steps at
    a time on two cores, heavy steps one at a time through their pools), in_process, or dask
    (steps as tasks on the dask cluster at HM_DASK_ADDRESS, or a local one of two worker
    processes). Run config (`execution: config:`) tunes the chosen one further."""
    kind = os.environ.get("HM_EXECUTOR", "multiprocess")
    if kind == "multiprocess":
        return dg.multiprocess_executor.configured({"max_concurrent": 2})
    if kind == "in_process":
        return dg.in_process_executor
    if kind == "dask":
        from hm_pipeline.dask_engine import dask_executor

        address = os.environ.get("HM_DASK_ADDRESS")
        cluster = (
            {"existing": {"address": address}}
            if address
            else {"local": {"n_workers": 2, "threads_per_worker": 1}}
        )
        return dask_executor.configured({"cluster": cluster})
    raise ValueError(f"HM_EXECUTOR={kind!r}: use multiprocess, in_process or dask")


def build_defs() -> dg.Definitions:
    """The Definitions, with resources read from the environment now (tests and the CLI call
    this after setting HM_DATA_DIR)."""
    return dg.Definitions(
        assets=all_assets,
        asset_checks=all_checks,
        jobs=[
            raw_job,
            catalogue_job,
            weekly_pipeline,
            prediction_job,
            reports_job,
            append_drop_job,
        ],
        schedules=[weekly_schedule],
        sensors=[drop_sensor],
        resources=resources(),
        executor=executor(),
        # the console logger for the UI and `dagster` commands; the CLI picks step_progress
        loggers={"console": dg.colored_console_logger, "step_progress": step_progress},
    )


defs = build_defs()
