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


def _hits(predictions: pl.DataFrame | pl.LazyFrame, truth: pl.DataFrame | pl.LazyFrame, k: int):
    """Per prediction within top k: customer, rank, hit flag; plus the truth set sizes."""
    truth_set = truth.lazy().select(CUSTOMER, ARTICLE).unique()
    n_true = truth_set.group_by(CUSTOMER).agg(pl.len().alias("n_true"))
    preds = (
        predictions.lazy()
        .select(CUSTOMER, ARTICLE, RANK)
        .sort(CUSTOMER, RANK)
        # a duplicated article counts once, at its best rank
        .unique([CUSTOMER, ARTICLE], keep="first", maintain_order=True)
        .with_columns(pl.int_range(1, pl.len() + 1).over(CUSTOMER).alias("pos"))
        .filter(pl.col("pos") <= k)
        .join(n_true.select(CUSTOMER), on=CUSTOMER, how="semi")
        .join(truth_set.with_columns(pl.lit(1).alias("hit")), on=[CUSTOMER, ARTICLE], how="left")
        .with_columns(pl.col("hit").fill_null(0))
    )
    return preds, n_true


def map_at_k(
    predictions: pl.DataFrame | pl.LazyFrame, truth: pl.DataFrame | pl.LazyFrame, k: int = 12
) -> float:
    """Mean average precision at k, as in the H&M competition.

    AP@k = sum over positions i <= k of precision@i * rel(i), divided by min(#bought, k).
    """
    preds, n_true = _hits(predictions, truth, k)
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
    preds, n_true = _hits(predictions, truth, k)
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
    preds, n_true = _hits(predictions, truth, k)
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
    preds, n_true = _hits(predictions, truth, k)
    found = preds.group_by(CUSTOMER).agg(pl.col("hit").sum().alias("found"))
    out = (
        n_true.join(found, on=CUSTOMER, how="left")
        .select((pl.col("found").fill_null(0) / pl.col("n_true")).mean())
        .collect()
    )
    return float(out.item() or 0.0)
