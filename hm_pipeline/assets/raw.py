"""Raw tables: the Kaggle CSV files as typed parquet, with their rejects and blocking checks."""

from collections.abc import Iterator

import dagster as dg
import polars as pl

from hm_pipeline import ingest
from hm_pipeline.resources import RawFiles
from hm_pipeline.schema import ARTICLES_FILE, CUSTOMERS_FILE, TRANSACTIONS_FILE

GROUP = "raw"
CHECK = "reject_share_within_limit"


def _check_spec(table: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        CHECK,
        asset=table,
        blocking=True,
        description=f"Rows set aside from {table} stay under RawFiles.max_reject_share; "
        "otherwise downstream assets do not run.",
    )


def _rejects_meta(rejects: pl.DataFrame) -> dict:
    counts = rejects.group_by("rule").len().sort("len", descending=True)
    return {
        "rejected_rows": dg.MetadataValue.int(rejects.height),
        "rejects_by_rule": dg.MetadataValue.json(dict(counts.iter_rows())),
    }


def _emit(
    context: dg.AssetExecutionContext,
    outputs: dict[str, tuple[pl.DataFrame | pl.LazyFrame, dict]],
    table: str,
    kept: int,
    rejected: int,
    limit: float,
) -> Iterator:
    """The selected outputs, then the reject-share check of `table` when it is selected."""
    for name, (frame, meta) in outputs.items():
        if name in context.op_execution_context.selected_output_names:
            yield dg.Output(frame, name, metadata=meta)
    if dg.AssetCheckKey(dg.AssetKey(table), CHECK) in context.selected_asset_check_keys:
        yield share_check(table, kept, rejected, limit)


def share_check(table: str, kept: int, rejected: int, limit: float) -> dg.AssetCheckResult:
    """The reject-share check's result: passes when the rows set aside stay within `limit`."""
    share = rejected / max(kept + rejected, 1)
    return dg.AssetCheckResult(
        asset_key=table,
        check_name=CHECK,
        passed=share <= limit,
        metadata={
            "kept_rows": kept,
            "rejected_rows": rejected,
            "reject_share": float(share),
            "max_reject_share": limit,
        },
    )


@dg.multi_asset(
    group_name=GROUP,
    outs={
        "articles": dg.AssetOut(
            is_required=False, description="articles.csv, typed; one row per article"
        ),
        "articles_rejects": dg.AssetOut(
            is_required=False, description="articles.csv rows set aside, with reason"
        ),
    },
    check_specs=[_check_spec("articles")],
    can_subset=True,
)
def articles(context: dg.AssetExecutionContext, raw_files: RawFiles):
    """Read and validate articles.csv."""
    r = ingest.ingest_articles(raw_files.path(ARTICLES_FILE))
    outputs = {"articles": (r.table, _rejects_meta(r.rejects)), "articles_rejects": (r.rejects, {})}
    yield from _emit(
        context, outputs, "articles", r.table.height, r.rejects.height, raw_files.max_reject_share
    )


@dg.multi_asset(
    group_name=GROUP,
    outs={
        "customers": dg.AssetOut(
            is_required=False, description="customers.csv, typed; customer_id is a dense int"
        ),
        "customer_ids": dg.AssetOut(
            is_required=False, description="customer_id (int) <-> customer_hex (Kaggle id)"
        ),
        "customers_rejects": dg.AssetOut(
            is_required=False, description="customers.csv rows set aside, with reason"
        ),
    },
    check_specs=[_check_spec("customers")],
    can_subset=True,
)
def customers(context: dg.AssetExecutionContext, raw_files: RawFiles):
    """Read and validate customers.csv; map the 64-hex ids to dense integers."""
    r, ids = ingest.ingest_customers(raw_files.path(CUSTOMERS_FILE))
    outputs = {
        "customers": (r.table, _rejects_meta(r.rejects)),
        "customer_ids": (ids, {}),
        "customers_rejects": (r.rejects, {}),
    }
    yield from _emit(
        context, outputs, "customers", r.table.height, r.rejects.height, raw_files.max_reject_share
    )


@dg.multi_asset(
    group_name=GROUP,
    outs={
        "transactions": dg.AssetOut(
            is_required=False, description="transactions_train.csv, typed, in file order"
        ),
        "transactions_rejects": dg.AssetOut(
            is_required=False, description="transaction rows set aside, with reason"
        ),
    },
    ins={"customer_ids": dg.AssetIn(), "articles": dg.AssetIn()},
    check_specs=[_check_spec("transactions")],
    can_subset=True,
)
def transactions(
    context: dg.AssetExecutionContext,
    raw_files: RawFiles,
    customer_ids: pl.LazyFrame,
    articles: pl.LazyFrame,
):
    """Read and validate transactions_train.csv; the table streams to parquet."""
    path = raw_files.path(TRANSACTIONS_FILE)
    r = ingest.ingest_transactions(
        path, customer_ids, articles.select("article_id"), raw_files.calendar()
    )
    rejects = r.rejects.collect(engine="streaming")
    total = ingest.count_records(path)
    outputs = {
        "transactions": (r.table, _rejects_meta(rejects)),
        "transactions_rejects": (rejects, {}),
    }
    yield from _emit(
        context,
        outputs,
        "transactions",
        total - rejects.height,
        rejects.height,
        raw_files.max_reject_share,
    )


@dg.asset(group_name=GROUP, ins={"articles": dg.AssetIn()})
def image_manifest(raw_files: RawFiles, articles: pl.DataFrame) -> dg.Output[pl.DataFrame]:
    """One row per article: image path, size and whether it exists."""
    manifest = ingest.image_manifest(articles["article_id"], raw_files.path(""))
    missing = manifest.filter(~pl.col("has_image"))
    return dg.Output(
        manifest,
        metadata={
            "articles_without_image": dg.MetadataValue.int(missing.height),
            "first_missing": dg.MetadataValue.json(missing["article_id"].head(20).to_list()),
        },
    )
