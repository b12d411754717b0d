"""The candidate union of a week: one row per (customer, article) found by any source, with
each source's score and rank as columns (null where the source did not find it)."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from hm_pipeline.lake import Chunked


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

    def spread(i: int, name: str) -> pl.LazyFrame:
        # the source's score and rank in its own pair of columns, null in the others
        cols = []
        for j, other in enumerate(names):
            mine = i == j
            cols += [
                (pl.col("score").cast(pl.Float32) if mine else pl.lit(None, pl.Float32)).alias(
                    f"{other}_score"
                ),
                (pl.col("rank").cast(pl.Int16) if mine else pl.lit(None, pl.Int16)).alias(
                    f"{other}_rank"
                ),
            ]
        return (
            sources[name]
            .lazy()
            .filter(pl.col("rank") <= per_source)
            .select("customer_id", "article_id", *cols, pl.col("rank").cast(pl.Int16).alias("_r"))
        )

    # A source lists a pair once (the candidate contract), so each pair's max/min over the
    # sources' rows is that source's value: plain aggregations, which polars runs about twice
    # as fast as a filter per source and column (benchmarks/union-chunks.md).
    aggs = []
    for n in names:
        aggs += [pl.col(f"{n}_score").max(), pl.col(f"{n}_rank").min()]
    union = (
        pl.concat([spread(i, n) for i, n in enumerate(names)])
        .group_by("customer_id", "article_id")
        .agg(
            *aggs,
            pl.len().cast(pl.Int16).alias("n_sources"),
            pl.col("_r").min().alias("best_rank"),
        )
    )
    return keep_best(union, max_per_customer).sort("customer_id", "article_id")


def keep_best(union: pl.DataFrame | pl.LazyFrame, n: int | None):
    """Each customer's first n rows in `best_first` order (all of them with n None): the cut
    of a union, or of a feature table, which keeps the union's rank columns."""
    if n is None:
        return union
    return best_first(union).filter(pl.int_range(pl.len()).over("customer_id") < n)


def shallower(table: pl.DataFrame | pl.LazyFrame, depth: int | None):
    """The union (or feature table) as `per_source` = depth would have built it from a deeper
    one: ranks and scores beyond `depth` null, n_sources and best_rank counted again, the
    pairs no source keeps dropped (None: the table as it is). The other columns of a feature
    table are the pair's, customer's and article's own, so they stay (`python
    benchmarks/ranker_cuts.py --study depth` compares depths on one table this way)."""
    if depth is None:
        return table
    names = source_names(table)
    kept = {n: pl.col(f"{n}_rank") <= depth for n in names}
    return (
        table.with_columns(
            *[
                pl.when(kept[n]).then(pl.col(f"{n}_{c}")).alias(f"{n}_{c}")
                for n in names
                for c in ("score", "rank")
            ]
        )
        .with_columns(
            pl.sum_horizontal(*[pl.col(f"{n}_rank").is_not_null() for n in names])
            .cast(pl.Int16)
            .alias("n_sources"),
            pl.min_horizontal(*[pl.col(f"{n}_rank") for n in names]).alias("best_rank"),
        )
        .filter(pl.col("n_sources") > 0)
    )


def best_first(union: pl.DataFrame | pl.LazyFrame):
    """A union's rows in the order a cut at N per customer keeps them: by customer, then best
    rank in any source, then found by more sources, then article id."""
    return union.sort(
        ["customer_id", "best_rank", "n_sources", "article_id"],
        descending=[False, False, True, False],
    )


@dataclass
class ChunkedUnion:
    """The union as a Chunked table over ranges [a, b) of customer ids."""

    table: Chunked
    bounds: list[tuple[int, int]]


def union_in_chunks(
    sources: dict[str, pl.LazyFrame | pl.DataFrame],
    per_source: int,
    max_per_customer: int | None,
    width: int,
) -> ChunkedUnion:
    """`candidate_union` for customer ids in ranges of `width`, one range at a time (rows in
    the same order as the whole union); its statistics become the table's metadata."""
    lazy = {n: lf.lazy() for n, lf in sources.items()}
    ends = pl.concat(
        [lf.select(pl.col("customer_id").min().alias("lo"), pl.col("customer_id").max().alias("hi"))
         for lf in lazy.values()]
    ).collect()  # fmt: skip
    lo, hi = ends["lo"].min(), ends["hi"].max()
    bounds = [] if lo is None else [(a, min(a + width, hi + 1)) for a in range(lo, hi + 1, width)]
    schema = candidate_union(
        {n: lf.head(0) for n, lf in lazy.items()}, per_source, max_per_customer
    ).collect_schema()
    stats = {"rows": 0, "customers": 0}

    def chunks():
        for a, b in bounds:
            in_range = pl.col("customer_id").is_between(a, b - 1)
            part = candidate_union(
                {n: lf.filter(in_range) for n, lf in lazy.items()},
                per_source,
                max_per_customer,
            ).collect(engine="streaming")
            stats["rows"] += part.height
            stats["customers"] += part["customer_id"].n_unique()
            yield part

    def metadata() -> dict:
        return {
            "customers": stats["customers"],
            "mean_per_customer": stats["rows"] / max(stats["customers"], 1),
        }

    return ChunkedUnion(Chunked(chunks(), schema, metadata), bounds)


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
