"""The candidate union of a week: one row per (customer, article) found by any source, with
each source's score and rank as columns (null where the source did not find it)."""

from __future__ import annotations

import polars as pl


def candidate_union(
    sources: dict[str, pl.LazyFrame | pl.DataFrame],
    per_source: int,
    max_per_customer: int | None = None,
) -> pl.LazyFrame:
    """customer_id, article_id, <source>_score, <source>_rank for each source, n_sources and
    best_rank; each source contributes its top `per_source` per customer, and a customer keeps
    at most `max_per_customer` rows (best rank in any source first, then found by more
    sources)."""
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
    union = long.group_by("customer_id", "article_id").agg(
        *aggs, pl.len().cast(pl.Int16).alias("n_sources"), pl.col("rank").min().alias("best_rank")
    )
    if max_per_customer is not None:
        union = union.sort(
            ["customer_id", "best_rank", "n_sources", "article_id"],
            descending=[False, False, True, False],
        ).filter(pl.int_range(pl.len()).over("customer_id") < max_per_customer)
    return union.sort("customer_id", "article_id")


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
