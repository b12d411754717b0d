"""The candidate-source protocol shared by every source, heuristic or learned.

A source is given the history (typed transactions), a cutoff date and the customers to score,
and returns (customer_id, article_id, score, rank) with at most k rows per customer. The base
class enforces the contract for every source: it cuts the history at the cutoff before the
source sees it, keeps only catalogue articles and requested customers, removes duplicate
pairs, and ranks by score (ties broken by article id, so outputs are deterministic).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import date
from typing import ClassVar

import polars as pl

CANDIDATE_SCHEMA: dict[str, pl.DataType] = {
    "customer_id": pl.Int32(),
    "article_id": pl.Int32(),
    "score": pl.Float32(),
    "rank": pl.Int32(),
}


@dataclass(frozen=True)
class SourceContext:
    """What a source may know besides the history: the catalogue and customer attributes."""

    articles: pl.DataFrame  # at least article_id, product_code
    customers: pl.DataFrame  # at least customer_id, age
    seed: int = 0
    # embedding tables by asset name (article_id, embedding, origin), for sources that use them
    embeddings: dict[str, pl.DataFrame] = field(default_factory=dict)


class CandidateSource(ABC):
    """Base class of every candidate source. Subclasses implement `score`."""

    name: ClassVar[str]
    embeddings: ClassVar[tuple[str, ...]] = ()  # embedding assets the source reads from ctx

    def __init__(self, k: int = 200):
        self.k = k

    @abstractmethod
    def score(
        self, history: pl.LazyFrame, customers: pl.DataFrame, cutoff: date, ctx: SourceContext
    ) -> pl.LazyFrame | pl.DataFrame:
        """Scores from the history strictly before `cutoff`: columns customer_id, article_id,
        score; or article_id, score for one list shared by every customer; or segment,
        article_id, score for one list per segment of customers (`segments` says whose)."""

    def segments(self, customers: pl.DataFrame, ctx: SourceContext) -> pl.LazyFrame:
        """customer_id, segment: the segment of each customer in `customers`, for a source
        whose `score` gives one list per segment."""
        raise NotImplementedError(f"{self.name} scores per segment but names no segments")

    def generate(
        self, history: pl.LazyFrame, customers: pl.Series, cutoff: date, ctx: SourceContext
    ) -> pl.DataFrame:
        """The top-k candidates of each customer in `customers`, under the contract."""
        hist = history.lazy().filter(pl.col("t_dat") < cutoff)
        cust = pl.DataFrame({"customer_id": customers.cast(pl.Int32)}).unique().sort("customer_id")
        scored = self.score(hist, cust, cutoff, ctx).lazy()
        catalogue = ctx.articles.lazy().select(pl.col("article_id").cast(pl.Int32))
        # rounding: parallel float sums differ in their last bits from run to run, which must
        # not reorder candidates
        scored = scored.with_columns(
            pl.col("article_id").cast(pl.Int32), pl.col("score").cast(pl.Float64).round(9)
        ).join(catalogue, on="article_id", how="semi")
        columns = scored.collect_schema().names()
        if "customer_id" not in columns:
            # one list for everyone (or per segment), ranked once: every customer (in id order)
            # gets its list as it is, the rows the per-customer ranking below would give,
            # without sorting every customer's rows
            if "segment" in columns:
                who = cust.lazy().join(
                    self.segments(cust, ctx).lazy(), on="customer_id", how="left"
                )
            else:
                scored = scored.with_columns(pl.lit(0, pl.Int32).alias("segment"))
                who = cust.lazy().with_columns(pl.lit(0, pl.Int32).alias("segment"))
            lists = top_k(
                scored.group_by("segment", "article_id").agg(pl.col("score").max()),
                self.k,
                by="segment",
            )
            return (
                who.sort("customer_id")
                .join(lists, on="segment", how="inner", maintain_order="left_right")
                .select(list(CANDIDATE_SCHEMA))
                .collect()
                .cast(CANDIDATE_SCHEMA)
            )
        scored = scored.with_columns(pl.col("customer_id").cast(pl.Int32)).join(
            cust.lazy(), on="customer_id", how="semi"
        )
        return (
            top_k(scored.group_by("customer_id", "article_id").agg(pl.col("score").max()), self.k)
            .select(list(CANDIDATE_SCHEMA))
            .collect(engine="streaming")
            .cast(CANDIDATE_SCHEMA)
        )


def at_least_kth(score: str, group: str, k: int) -> pl.Expr:
    """Rows whose `score` (a float column) is at least their group's k-th largest (every row
    of a group with fewer): a superset of any top k of the group, whatever breaks the ties,
    found by a selection per group. Filtering by it before sorting or picking the top k leaves
    the result as it was and spares the work on the rest. Nulls and NaNs are kept."""
    col = pl.col(score)
    return col.is_null() | col.is_nan() | (col >= col.fill_nan(None).top_k(k).min().over(group))


def top_k(scored: pl.LazyFrame, k: int, by: str = "customer_id") -> pl.LazyFrame:
    """The k best rows per customer (or per `by`: a shared list's segment) by score (rounded
    as `generate` rounds it, so a source that cuts its own lists early keeps what `generate`
    would), ties by article id, rank 1..k."""
    scored = scored.with_columns(pl.col("score").cast(pl.Float64).round(9))
    return (
        scored.sort([by, "score", "article_id"], descending=[False, True, False])
        .with_columns(pl.int_range(1, pl.len() + 1, dtype=pl.Int32).over(by).alias("rank"))
        .filter(pl.col("rank") <= k)
    )
