"""Ranking metrics over polars frames, vectorized (no loop over customers).

`predictions` has one row per recommended item: customer_id, article_id, rank (1 = best).
`truth` has one row per purchase: customer_id, article_id (duplicates are ignored).
Every metric averages over the customers present in `truth`, i.e. those who bought in the
week; a customer with no prediction scores 0, exactly as the competition's MAP@12.
"""

from __future__ import annotations

import polars as pl

CUSTOMER = "customer_id"
ARTICLE = "article_id"
RANK = "rank"


Hits = tuple[pl.LazyFrame, pl.LazyFrame]


def hits(
    predictions: pl.DataFrame | pl.LazyFrame, truth: pl.DataFrame | pl.LazyFrame, k: int
) -> Hits:
    """Per prediction within top k (customer, article, pos, hit flag) and the truth set sizes
    (customer, n_true), computed once: every metric below reads them, and recall at any k' <= k
    is the rows with pos <= k' (pos counts distinct articles, so it does not depend on k)."""
    truth_set = truth.lazy().select(CUSTOMER, ARTICLE).unique()
    n_true = truth_set.group_by(CUSTOMER).agg(pl.len().alias("n_true")).collect()
    preds = (
        predictions.lazy()
        .select(CUSTOMER, ARTICLE, RANK)
        # only the buyers' lists are sorted (e.g. a few first-time buyers among all lists)
        .join(n_true.lazy().select(CUSTOMER), on=CUSTOMER, how="semi")
        .sort(CUSTOMER, RANK)
        # a duplicated article counts once, at its best rank
        .unique([CUSTOMER, ARTICLE], keep="first", maintain_order=True)
        .with_columns(pl.int_range(1, pl.len() + 1).over(CUSTOMER).alias("pos"))
        .filter(pl.col("pos") <= k)
        .join(truth_set.with_columns(pl.lit(1).alias("hit")), on=[CUSTOMER, ARTICLE], how="left")
        .with_columns(pl.col("hit").fill_null(0))
        .collect()
    )
    return preds.lazy(), n_true.lazy()


def cut(h: Hits, k: int) -> Hits:
    """The hits of the top k only (k at most the k they were computed for)."""
    preds, n_true = h
    return preds.filter(pl.col("pos") <= k), n_true


def map_at_k(
    predictions: pl.DataFrame | pl.LazyFrame, truth: pl.DataFrame | pl.LazyFrame, k: int = 12
) -> float:
    """Mean average precision at k, as in the H&M competition.

    AP@k = sum over positions i <= k of precision@i * rel(i), divided by min(#bought, k).
    """
    return map_of(hits(predictions, truth, k), k)


def map_of(h: Hits, k: int) -> float:
    """MAP@k from `hits(..., k)`."""
    preds, n_true = h
    ap = (
        preds.sort(CUSTOMER, "pos")
        .with_columns(pl.col("hit").cum_sum().over(CUSTOMER).alias("cum_hits"))
        .group_by(CUSTOMER)
        .agg((pl.col("cum_hits") / pl.col("pos") * pl.col("hit")).sum().alias("sum_prec"))
    )
    out = (
        n_true.join(ap, on=CUSTOMER, how="left")
        .select((pl.col("sum_prec").fill_null(0) / pl.min_horizontal("n_true", pl.lit(k))).mean())
        .collect()
    )
    return float(out.item() or 0.0)


def hit_rate_at_k(
    predictions: pl.DataFrame | pl.LazyFrame, truth: pl.DataFrame | pl.LazyFrame, k: int = 12
) -> float:
    """Share of buying customers with at least one purchased article in their top k."""
    return hit_rate_of(hits(predictions, truth, k))


def hit_rate_of(h: Hits) -> float:
    """Hit rate from `hits(..., k)`."""
    preds, n_true = h
    hit = preds.group_by(CUSTOMER).agg(pl.col("hit").max().alias("any"))
    out = (
        n_true.join(hit, on=CUSTOMER, how="left")
        .select(pl.col("any").fill_null(0).mean())
        .collect()
    )
    return float(out.item() or 0.0)


def ndcg_at_k(
    predictions: pl.DataFrame | pl.LazyFrame, truth: pl.DataFrame | pl.LazyFrame, k: int = 12
) -> float:
    """Normalized discounted cumulative gain at k with binary relevance."""
    return ndcg_of(hits(predictions, truth, k), k)


def ndcg_of(h: Hits, k: int) -> float:
    """NDCG@k from `hits(..., k)`."""
    preds, n_true = h
    dcg = preds.group_by(CUSTOMER).agg(
        (pl.col("hit") / (pl.col("pos") + 1).log(2)).sum().alias("dcg")
    )
    ideal_discounts = pl.DataFrame({"pos": range(1, k + 1)}).with_columns(
        (1.0 / (pl.col("pos") + 1).log(2)).cum_sum().alias("idcg")
    )
    out = (
        n_true.with_columns(pl.min_horizontal("n_true", pl.lit(k)).alias("pos"))
        .join(ideal_discounts.lazy(), on="pos", how="left")
        .join(dcg, on=CUSTOMER, how="left")
        .select((pl.col("dcg").fill_null(0) / pl.col("idcg")).mean())
        .collect()
    )
    return float(out.item() or 0.0)


def recall_at_k(
    predictions: pl.DataFrame | pl.LazyFrame, truth: pl.DataFrame | pl.LazyFrame, k: int = 12
) -> float:
    """Mean over buying customers of the share of their distinct purchases found in the top k."""
    return recall_of(hits(predictions, truth, k))


def recall_of(h: Hits) -> float:
    """Recall from `hits(..., k)` (or its `cut`)."""
    preds, n_true = h
    found = preds.group_by(CUSTOMER).agg(pl.col("hit").sum().alias("found"))
    out = (
        n_true.join(found, on=CUSTOMER, how="left")
        .select((pl.col("found").fill_null(0) / pl.col("n_true")).mean())
        .collect()
    )
    return float(out.item() or 0.0)
