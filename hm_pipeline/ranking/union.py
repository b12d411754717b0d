"""The candidate union of a week: one row per (customer, article) found by any source, with
each source's score and rank as columns (null where the source did not find it)."""

from __future__ import annotations

import polars as pl


def candidate_union(
    sources: dict[str, pl.LazyFrame | pl.DataFrame], per_source: int
) -> pl.LazyFrame:
    """customer_id, article_id, <source>_score, <source>_rank for each source, n_sources and
    best_rank; each source contributes its top `per_source` per customer."""
    names = sorted(sources)
    long = pl.concat(
        [
            sources[n]
            .lazy()
            .filter(pl.col("rank") <= per_source)
            .select(
                "customer_id",
                "article_id",
                pl.lit(i, pl.Int8).alias("_src"),
                pl.col("score").cast(pl.Float32),
                pl.col("rank").cast(pl.Int16),
            )
            for i, n in enumerate(names)
        ]
    )
    aggs = []
    for i, n in enumerate(names):
        hit = pl.col("_src") == i
        aggs += [
            pl.col("score").filter(hit).first().alias(f"{n}_score"),
            pl.col("rank").filter(hit).first().alias(f"{n}_rank"),
        ]
    return (
        long.group_by("customer_id", "article_id")
        .agg(
            *aggs,
            pl.len().cast(pl.Int16).alias("n_sources"),
            pl.col("rank").min().alias("best_rank"),
        )
        .sort("customer_id", "article_id")
    )


def source_names(union: pl.DataFrame | pl.LazyFrame) -> list[str]:
    """The sources a union was built from (from its <source>_rank columns)."""
    cols = union.collect_schema().names() if isinstance(union, pl.LazyFrame) else union.columns
    return [c.removesuffix("_rank") for c in cols if c.endswith("_rank") and c != "best_rank"]


def union_recall(union: pl.DataFrame, labels: pl.DataFrame) -> dict:
    """Recall of the union against the week's purchases (distinct customer-article pairs of
    the buyers), and its size per customer."""
    bought = labels.select("customer_id", "article_id").unique()
    found = bought.join(
        union.select("customer_id", "article_id"), on=["customer_id", "article_id"], how="semi"
    )
    per_customer = union.group_by("customer_id").len()["len"]
    return {
        "recall": found.height / max(bought.height, 1),
        "customers_with_a_hit": found["customer_id"].n_unique()
        / max(bought["customer_id"].n_unique(), 1),
        "mean_candidates_per_customer": float(per_customer.mean() or 0),
        "max_candidates_per_customer": int(per_customer.max() or 0),
    }
