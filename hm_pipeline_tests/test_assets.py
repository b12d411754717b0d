"""The Dagster wiring: definitions load, raw assets materialize, checks block, IO manager."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from hm_pipeline import schema as S
from hm_pipeline.definitions import all_assets, all_checks, build_defs
from hm_pipeline.io_manager import ParquetIOManager
from hm_pipeline.resources import ModelStore, RawFiles, Reports, Warehouse
from hm_pipeline_tests.conftest import run_dagster

REPO = Path(__file__).resolve().parents[1]


def _resources(data: Path, **raw_files_config) -> dict:
    return {
        "io_manager": ParquetIOManager(base_dir=str(data / "lake"), raw_dir=str(data / "raw")),
        "raw_files": RawFiles(raw_dir=str(data / "raw"), **raw_files_config),
        "reports": Reports(reports_dir=str(data / "reports")),
        "model_store": ModelStore(models_dir=str(data / "models")),
        "warehouse": Warehouse(path=str(data / "hm.duckdb")),
    }


def _materialize(data: Path, **raw_files_config) -> dg.ExecuteInProcessResult:
    """The raw tables and their checks."""
    return dg.materialize(
        [*all_assets, *all_checks],
        resources=_resources(data, **raw_files_config),
        selection=dg.AssetSelection.groups("raw"),
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def test_definitions_load() -> None:
    defs = build_defs()
    dg.Definitions.validate_loadable(defs)
    keys = {k.to_user_string() for k in defs.resolve_all_asset_keys()}
    assert {
        "articles",
        "customers",
        "customer_ids",
        "transactions",
        "image_manifest",
        "transactions_rejects",
    } <= keys
    assert defs.resolve_job_def("weekly_pipeline")


def test_dagster_cli_validates_the_code_location(tmp_path: Path) -> None:
    out = run_dagster("definitions", "validate", "-m", "hm_pipeline.definitions", data_dir=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]


def test_raw_assets_materialize_typed_tables(data_dir: Path) -> None:
    result = _materialize(data_dir)
    assert result.success
    lake = data_dir / "lake"
    tx = pl.read_parquet(lake / "transactions.parquet")
    assert tx.schema == pl.Schema(S.TRANSACTIONS_SCHEMA)
    csv_rows = sum(1 for _ in (data_dir / "raw" / S.TRANSACTIONS_FILE).open()) - 1
    assert tx.height == csv_rows  # nothing lost, nothing rejected in a clean world
    assert pl.read_parquet(lake / "transactions_rejects.parquet").height == 0
    assert pl.read_parquet(lake / "articles.parquet").schema == pl.Schema(S.ARTICLES_SCHEMA)
    assert pl.read_parquet(lake / "customers.parquet").schema == pl.Schema(S.CUSTOMERS_SCHEMA)
    manifest = pl.read_parquet(lake / "image_manifest.parquet")
    assert manifest.schema == pl.Schema(S.IMAGE_MANIFEST_SCHEMA)
    assert 0 < (~manifest["has_image"]).sum() < manifest.height
    assert not list(lake.glob(".*.tmp"))  # atomic writes leave no temporary files
    checks = result.get_asset_check_evaluations()
    assert len(checks) == 3 and all(c.passed for c in checks)
    mat = result.asset_materializations_for_node("transactions")[0]
    assert mat.metadata["dagster/row_count"].value == csv_rows
    assert "dagster/column_schema" in mat.metadata


def test_customer_ids_round_trip_to_the_kaggle_ids(data_dir: Path) -> None:
    assert _materialize(data_dir).success
    lake = data_dir / "lake"
    raw = pl.read_csv(data_dir / "raw" / S.TRANSACTIONS_FILE, columns=["customer_id", "article_id"])
    typed = pl.read_parquet(lake / "transactions.parquet").join(
        pl.read_parquet(lake / "customer_ids.parquet"),
        on="customer_id",
        how="left",
        maintain_order="left",
    )
    assert typed["customer_hex"].to_list() == raw["customer_id"].to_list()
    assert typed["article_id"].to_list() == raw["article_id"].to_list()


def test_too_many_rejects_block_downstream_assets(data_dir: Path) -> None:
    path = data_dir / "raw" / S.TRANSACTIONS_FILE
    lines = path.read_text().splitlines(keepends=True)
    # every 20th data row gets a non-positive price: 5% rejects, above a 1% limit
    rows = [
        ln.rsplit(",", 2)[0] + ",-1," + ln.rsplit(",", 1)[1] if i % 20 == 0 else ln
        for i, ln in enumerate(lines[1:], start=1)
    ]
    path.write_text(lines[0] + "".join(rows))
    bad_lines = [i + 1 for i in range(1, len(lines)) if i % 20 == 0]  # the header is line 1
    result = _materialize(data_dir, max_reject_share=0.01)
    checks = {c.asset_key.to_user_string(): c for c in result.get_asset_check_evaluations()}
    assert not checks["transactions"].passed
    assert checks["transactions"].metadata["rejected_rows"].value == len(bad_lines)
    kept = checks["transactions"].metadata["kept_rows"].value
    assert kept + len(bad_lines) == len(lines) - 1
    rejects = pl.read_parquet(data_dir / "lake" / "transactions_rejects.parquet")
    assert set(rejects["rule"]) == {"price not positive"}
    assert rejects["source_line"].to_list() == bad_lines


def test_blocking_check_stops_what_depends_on_the_table(data_dir: Path) -> None:
    path = data_dir / "raw" / S.ARTICLES_FILE
    df = pl.read_csv(path, infer_schema=False)
    df = df.with_columns(
        pl.when(pl.int_range(pl.len()) % 10 == 0)
        .then(pl.lit("n/a"))
        .otherwise(pl.col("product_type_no"))
        .alias("product_type_no")
    )
    df.write_csv(path)
    result = _materialize(data_dir, max_reject_share=0.01)
    checks = {c.asset_key.to_user_string(): c for c in result.get_asset_check_evaluations()}
    assert not checks["articles"].passed
    done = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "articles" in done and "transactions" not in done and "image_manifest" not in done


def test_io_manager_writes_one_file_per_partition(tmp_path: Path) -> None:
    weekly = dg.StaticPartitionsDefinition(["2020-09-09", "2020-09-16"])

    @dg.asset(partitions_def=weekly)
    def weekly_table(context) -> pl.LazyFrame:  # noqa: ANN001 (dagster wants it bare here)
        return pl.LazyFrame({"week": [context.partition_key] * 3})

    @dg.asset(partitions_def=weekly)
    def weekly_count(weekly_table: pl.DataFrame) -> pl.DataFrame:
        return weekly_table.select(pl.len())

    io = ParquetIOManager(base_dir=str(tmp_path))
    for key in weekly.get_partition_keys():
        assert dg.materialize(
            [weekly_table, weekly_count], partition_key=key, resources={"io_manager": io}
        ).success
    assert (
        pl.read_parquet(tmp_path / "weekly_table" / "2020-09-16.parquet")["week"].to_list()
        == ["2020-09-16"] * 3
    )
    assert pl.read_parquet(tmp_path / "weekly_count" / "2020-09-09.parquet").item() == 3


def test_io_manager_refuses_non_frames(tmp_path: Path) -> None:
    @dg.asset
    def not_a_frame() -> dict:
        return {"a": 1}

    with pytest.raises(TypeError, match="expected a polars frame"):
        dg.materialize(
            [not_a_frame], resources={"io_manager": ParquetIOManager(base_dir=str(tmp_path))}
        )
