"""Co-purchase embeddings (the transactions' view of an article): positive pointwise mutual
information of articles bought in the same basket (customer and day) or by the same customer
within a week, over a window before the cutoff, factorized by a truncated SVD. Articles with
no co-purchase take their product code's (or product type's) mean; the origin column says so."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
from scipy import sparse
from scipy.sparse.linalg import svds

from hm_pipeline.embeddings.common import fill_from_groups, normalize, to_table


def copurchase_pairs(history: pl.LazyFrame, cutoff: date, days: int, max_basket: int = 30):
    """(a, b, n) counts of distinct article pairs bought by the same customer in the same week
    (weeks counted back from the cutoff), a != b, over the `days` before the cutoff. Baskets
    above `max_basket` articles (bulk buyers) keep their first articles by id."""
    week_no = ((pl.lit(cutoff) - pl.col("t_dat")).dt.total_days() // 7).alias("wk")
    baskets = (
        history.filter(
            (pl.col("t_dat") < cutoff) & (pl.col("t_dat") >= cutoff - timedelta(days=days))
        )
        .select("customer_id", week_no, "article_id")
        .unique()
        .sort("customer_id", "wk", "article_id")
        .with_columns(pl.int_range(pl.len()).over("customer_id", "wk").alias("pos"))
        .filter(pl.col("pos") < max_basket)
        .drop("pos")
    )
    return (
        baskets.join(baskets, on=["customer_id", "wk"], suffix="_b")
        .filter(pl.col("article_id") != pl.col("article_id_b"))
        .group_by("article_id", "article_id_b")
        .agg(pl.len().alias("n"))
        .collect(engine="streaming")
    )


def copurchase_embeddings(
    history: pl.LazyFrame,
    articles: pl.DataFrame,
    cutoff: date,
    dim: int = 48,
    days: int = 182,
    seed: int = 0,
) -> pl.DataFrame:
    """Unit-norm vectors for every catalogue article from co-purchases before `cutoff`."""
    arts = articles.sort("article_id")
    ids = arts["article_id"].to_numpy()
    pairs = copurchase_pairs(history, cutoff, days)
    a = np.searchsorted(ids, pairs["article_id"].to_numpy())
    b = np.searchsorted(ids, pairs["article_id_b"].to_numpy())
    ok = (a < len(ids)) & (b < len(ids))
    ok[ok] &= (ids[a[ok]] == pairs["article_id"].to_numpy()[ok]) & (
        ids[b[ok]] == pairs["article_id_b"].to_numpy()[ok]
    )
    n = len(ids)
    c = sparse.csr_matrix(
        (pairs["n"].to_numpy()[ok].astype(np.float64), (a[ok], b[ok])), shape=(n, n)
    )
    vectors = np.zeros((n, dim), np.float32)
    row_sum = np.asarray(c.sum(axis=1)).ravel()
    known = row_sum > 0
    if c.nnz and known.sum() > dim + 1:
        total = row_sum.sum()
        coo = c.tocoo()
        # PPMI with context smoothing (alpha 0.75) as in word2vec
        ctx = row_sum**0.75
        pmi = np.log(coo.data * ctx.sum() / (row_sum[coo.row] * ctx[coo.col]))
        del total
        keep = pmi > 0
        ppmi = sparse.csr_matrix((pmi[keep], (coo.row[keep], coo.col[keep])), shape=(n, n)).astype(
            np.float32
        )
        k = min(dim, min(ppmi.shape) - 1)
        v0 = np.random.default_rng(seed).standard_normal(n).astype(np.float32)
        u, s, _ = svds(ppmi, k=k, v0=v0)
        order = np.argsort(s)[::-1]
        u, s = u[:, order], s[order]
        u *= np.sign(u[np.abs(u).argmax(axis=0), np.arange(u.shape[1])])
        vectors[:, :k] = u * np.sqrt(s)
        known &= np.linalg.norm(vectors, axis=1) > 0
    vectors = normalize(vectors)
    vectors, origin = fill_from_groups(
        vectors,
        known,
        [arts["product_code"].to_numpy(), arts["product_type_no"].to_numpy()],
    )
    return to_table(ids, vectors, origin)
