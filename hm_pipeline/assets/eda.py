"""The EDA report: plots under data/reports/eda/ and in the asset's markdown metadata."""

import dagster as dg
import polars as pl

from hm_pipeline import eda
from hm_pipeline.resources import Reports


@dg.asset(group_name="reports")
def eda_report(
    context: dg.AssetExecutionContext,
    reports: Reports,
    transactions: pl.LazyFrame,
    customers: pl.LazyFrame,
    articles: pl.LazyFrame,
) -> pl.DataFrame:
    """Weekly sales, active customers, channel split, ages, bulk and rare buyers, best and
    worst sellers, basket sizes, repurchase gaps; a summary table beside them."""
    table, md = eda.write_report(
        transactions, customers, articles, reports.path("eda", "summary.md").parent
    )
    context.add_output_metadata({"report": dg.MetadataValue.md(md)})
    return table
