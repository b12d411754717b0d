"""The EDA report: plots under data/reports/eda/ and in the asset's markdown metadata."""

import dagster as dg
import polars as pl

from hm_pipeline import eda, plots
from hm_pipeline.evaluation import markdown_table
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
    table = eda.summary(transactions, customers, articles)
    sellers = eda.sellers(transactions, articles)
    figs = eda.figures(transactions, customers, articles, reports.path("eda", "x").parent)
    md = [markdown_table(table), "### Most and least sold articles", markdown_table(sellers)] + [
        f"### {t}\n\n{plots.markdown_image(p, t)}" for t, p in figs.items()
    ]
    (reports.path("eda", "summary.md")).write_text(
        markdown_table(table)
        + "\n\n"
        + "\n".join(f"![{t}]({p.name})" for t, p in figs.items())
        + "\n"
    )
    context.add_output_metadata({"report": dg.MetadataValue.md("\n\n".join(md))})
    return table
