"""A parquet IO manager over polars: one file per asset, or per partition when partitioned.

Outputs may be a DataFrame (written) or a LazyFrame (streamed). Inputs are loaded as a
LazyFrame unless the input is annotated `pl.DataFrame`; an input spanning several partitions
is a dict keyed by partition. Row count and column schema are
attached to every materialization so they show in the UI.

Appendable tables: `transactions` is read as the ingested file followed by every weekly drop
that the raw folder's calendar state records as appended (`transaction_drops/<name>.parquet`),
so a drop never rewrites the history already written.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl

from hm_pipeline.lake import Chunked, check_readable, write_parquet_atomic
from hm_pipeline.settings import calendar_state

APPENDED = {"transactions": "transaction_drops"}  # table -> the partitioned asset appended to it


def table_schema(schema: pl.Schema) -> dg.TableSchema:
    """A Dagster table schema from a polars schema."""
    return dg.TableSchema(
        columns=[dg.TableColumn(name, str(dtype)) for name, dtype in schema.items()]
    )


class ParquetIOManager(dg.ConfigurableIOManager):
    """Stores each asset as `<base_dir>/<asset key path>.parquet`, or
    `<base_dir>/<asset key path>/<partition key>.parquet` when partitioned."""

    base_dir: str
    raw_dir: str = ""  # where the calendar state lists the appended drops ("" = none)

    def appended(self, asset_key: dg.AssetKey) -> list[Path]:
        """The files appended to an appendable table, in the order they were appended."""
        name = APPENDED.get(asset_key.to_user_string())
        if name is None or not self.raw_dir:
            return []
        drops = sorted(calendar_state(Path(self.raw_dir))["drops"])
        files = [self.path_for(dg.AssetKey(name), d) for d in drops]
        missing = [str(f) for f in files if not f.exists()]
        if missing:
            raise FileNotFoundError(
                f"{asset_key.to_user_string()}: the calendar state lists drops whose table is "
                f"missing: {missing}; re-materialize {name} for them"
            )
        return files

    def path_for(self, asset_key: dg.AssetKey, partition_key: str | None = None) -> Path:
        """Where an asset (partition) lives."""
        base = Path(self.base_dir).joinpath(*asset_key.path)
        return base / f"{partition_key}.parquet" if partition_key else base.with_suffix(".parquet")

    def handle_output(
        self, context: dg.OutputContext, obj: pl.DataFrame | pl.LazyFrame | Chunked | None
    ) -> None:
        if obj is None:
            return
        if not isinstance(obj, pl.DataFrame | pl.LazyFrame | Chunked):
            raise TypeError(
                f"{context.asset_key.to_user_string()}: expected a polars frame, got {type(obj)}"
            )
        partition = None
        if context.has_asset_partitions:
            keys = context.asset_partition_keys
            if len(keys) != 1:
                raise ValueError(
                    f"{context.asset_key.to_user_string()}: one output cannot hold {len(keys)} "
                    "partitions; write one file per partition and return MaterializeResult"
                )
            partition = keys[0]
        path = self.path_for(context.asset_key, partition)
        rows = write_parquet_atomic(obj, path)
        schema = pl.scan_parquet(path).collect_schema()
        context.add_output_metadata(
            {
                "dagster/row_count": rows,
                "dagster/column_schema": table_schema(schema),
                "path": dg.MetadataValue.path(str(path)),
                **(obj.metadata() if isinstance(obj, Chunked) else {}),
            }
        )

    def load_input(self, context: dg.InputContext) -> pl.DataFrame | pl.LazyFrame | dict:
        eager = context.dagster_type.typing_type is pl.DataFrame
        key = context.asset_key

        def read(path: Path) -> pl.DataFrame | pl.LazyFrame:
            if not path.exists():
                raise FileNotFoundError(
                    f"{key.to_user_string()}: {path} does not exist; materialize it first"
                )
            paths = [path, *self.appended(key)]
            for p in paths:
                check_readable(p, key.to_user_string())
            if len(paths) > 1:
                frame = pl.scan_parquet(paths)
                return frame.collect() if eager else frame
            return pl.read_parquet(path) if eager else pl.scan_parquet(path)

        if context.has_asset_partitions:
            keys = context.asset_partition_keys
            # AssetIn(metadata={"by_partition": True}): always {partition: frame}, even for one
            by_partition = (context.definition_metadata or {}).get("by_partition", False)
            if len(keys) == 1 and not by_partition:
                return read(self.path_for(key, keys[0]))
            return {k: read(self.path_for(key, k)) for k in keys}
        return read(self.path_for(key))
