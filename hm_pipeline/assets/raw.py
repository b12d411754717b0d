"""Raw tables: the Kaggle CSV files as typed parquet, with their rejects and checks."""

import dagster as dg
import polars as pl

from hm_pipeline import ingest
from hm_pipeline.resources import RawFiles
from hm_pipeline.schema import ARTICLES_FILE, CUSTOMERS_FILE, TRANSACTIONS_FILE

GROUP = "raw"


def _rejects_meta(rejects: pl.DataFrame) -> dict:
    counts = rejects.group_by("rule").len().sort("len", descending=True)
    return {
        "rejected_rows": dg.MetadataValue.int(rejects.height),
        "rejects_by_rule": dg.MetadataValue.json(dict(counts.iter_rows())),
    }


@dg.multi_asset(
    group_name=GROUP,
    outs={
        "articles": dg.AssetOut(description="articles.csv, typed; one row per article"),
        "articles_rejects": dg.AssetOut(description="articles.csv rows set aside, with reason"),
    },
)
def articles(raw_files: RawFiles):
    """Read and validate articles.csv."""
    result = ingest.ingest_articles(raw_files.path(ARTICLES_FILE))
    yield dg.Output(result.table, "articles", metadata=_rejects_meta(result.rejects))
    yield dg.Output(result.rejects, "articles_rejects")


@dg.multi_asset(
    group_name=GROUP,
    outs={
        "customers": dg.AssetOut(description="customers.csv, typed; customer_id is a dense int"),
        "customer_ids": dg.AssetOut(description="customer_id (int) <-> customer_hex (Kaggle id)"),
        "customers_rejects": dg.AssetOut(description="customers.csv rows set aside, with reason"),
    },
)
def customers(raw_files: RawFiles):
    """Read and validate customers.csv; map the 64-hex ids to dense integers."""
    result, ids = ingest.ingest_customers(raw_files.path(CUSTOMERS_FILE))
    yield dg.Output(result.table, "customers", metadata=_rejects_meta(result.rejects))
    yield dg.Output(ids, "customer_ids")
    yield dg.Output(result.rejects, "customers_rejects")


@dg.multi_asset(
    group_name=GROUP,
    outs={
        "transactions": dg.AssetOut(description="transactions_train.csv, typed, in file order"),
        "transactions_rejects": dg.AssetOut(description="transaction rows set aside, with reason"),
    },
    ins={"customer_ids": dg.AssetIn(), "articles": dg.AssetIn()},
)
def transactions(raw_files: RawFiles, customer_ids: pl.LazyFrame, articles: pl.LazyFrame):
    """Read and validate transactions_train.csv, streaming."""
    result = ingest.ingest_transactions(
        raw_files.path(TRANSACTIONS_FILE),
        customer_ids,
        articles.select("article_id"),
        raw_files.calendar(),
    )
    yield dg.Output(result.table, "transactions")
    yield dg.Output(result.rejects, "transactions_rejects")


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


def _reject_share_check(table: str, rejects: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=table,
        name="reject_share_within_limit",
        blocking=True,
        additional_ins={"rejects": dg.AssetIn(rejects)},
        description=f"Rows set aside from {table} stay under RawFiles.max_reject_share; "
        "otherwise downstream assets do not run.",
    )
    def check(
        raw_files: RawFiles, kept_rows: pl.LazyFrame, rejects: pl.LazyFrame
    ) -> dg.AssetCheckResult:
        kept = kept_rows.select(pl.len()).collect().item()
        rejected = rejects.select(pl.len()).collect().item()
        share = rejected / max(kept + rejected, 1)
        return dg.AssetCheckResult(
            passed=share <= raw_files.max_reject_share,
            metadata={
                "kept_rows": kept,
                "rejected_rows": rejected,
                "reject_share": float(share),
                "max_reject_share": raw_files.max_reject_share,
            },
        )

    return check


reject_checks = [
    _reject_share_check("articles", "articles_rejects"),
    _reject_share_check("customers", "customers_rejects"),
    _reject_share_check("transactions", "transactions_rejects"),
]
