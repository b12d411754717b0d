"""Product-similarity sources against a brute-force reference: a target's score is the
recency-weighted sum of its similarities to the customer's recent purchases, over each
purchase's nearest targets; the fused source scales each embedding's scores to the customer's
best before summing."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from hm_pipeline.candidates import REGISTRY, SourceContext
from hm_pipeline.candidates.similarity import recent_purchases
from hm_pipeline.embeddings.common import matrix, normalize, to_table

CUTOFF = date(2020, 9, 2)
NAMES = ("text_embeddings", "image_embeddings", "metadata_embeddings", "copurchase_embeddings")


@pytest.fixture(scope="module")
def world(tiny_tables: dict):
    """Random unit vectors (no ties) for every article, one table per embedding."""
    arts = tiny_tables["articles"]
    rng = np.random.default_rng(3)
    ids = arts["article_id"].to_numpy()
    embeddings = {
        name: to_table(ids, normalize(rng.normal(size=(len(ids), 8 + 4 * j))), "model")
        for j, name in enumerate(NAMES)
    }
    ctx = SourceContext(arts, tiny_tables["customers"], embeddings=embeddings)
    tx = tiny_tables["transactions"]
    customers = tx.filter(pl.col("t_dat") < CUTOFF)["customer_id"].unique().sort().head(60)
    return tx, ctx, customers


def reference(
    src, tx: pl.DataFrame, customers: pl.Series, ctx: SourceContext, depth: int
) -> pl.DataFrame:
    """customer_id, article_id, score of each customer's top `depth`, one customer at a time,
    in float64."""
    hist = tx.lazy().filter(pl.col("t_dat") < CUTOFF)
    recent = recent_purchases(hist, CUTOFF, src.days, src.max_recent, src.half_life).collect()
    pool = np.sort(
        hist.filter(pl.col("t_dat") >= CUTOFF - timedelta(days=src.pool_days))
        .select("article_id")
        .unique()
        .collect()["article_id"]
        .to_numpy()
    )
    rows = []
    for cust in customers.to_list():
        mine = recent.filter(pl.col("customer_id") == cust)
        total = np.zeros(len(pool))
        for name in src.embeddings:
            ids, x = matrix(ctx.embeddings[name])
            mine_x = x[np.searchsorted(ids, mine["article_id"].to_numpy())]
            sims = mine_x @ x[np.searchsorted(ids, pool)].T
            score = np.zeros(len(pool))
            for w, s in zip(mine["weight"].to_numpy(), sims, strict=True):
                near = np.argsort(-s, kind="stable")[: src.neighbours]
                score[near] += w * s[near]
            if len(src.embeddings) > 1 and np.abs(score).max() > 0:
                score /= np.abs(score).max()
            total += score
        found = np.flatnonzero(total != 0)
        best = found[np.lexsort((pool[found], -total[found]))][:depth]
        rows += [(cust, int(pool[j]), float(total[j])) for j in best]
    return pl.DataFrame(
        rows,
        schema={"customer_id": pl.Int32, "article_id": pl.Int32, "score": pl.Float64},
        orient="row",
    )


@pytest.mark.parametrize("name", ["similar_text", "similar_fused"])
def test_similarity_scores_are_the_weighted_sums_over_nearest_neighbours(name, world) -> None:
    tx, ctx, customers = world
    src = REGISTRY[name](k=15, neighbours=6, chunk=13)
    got = src.generate(tx.lazy(), customers, CUTOFF, ctx).sort("customer_id", "rank")
    # deeper than k: an article just past the k-th may tie with it
    deep = reference(src, tx, customers, ctx, depth=src.k + 10)
    assert deep["customer_id"].n_unique() > 20  # customers with recent purchases
    assert got["customer_id"].unique().to_list() == deep["customer_id"].unique().to_list()
    for (cust,), mine in got.group_by("customer_id"):
        ref = deep.filter(pl.col("customer_id") == cust)
        ref_score = dict(zip(ref["article_id"], ref["score"], strict=True))
        assert mine.height == min(src.k, ref.height) and mine["article_id"].is_unique().all()
        # the i-th article is one whose exact score is the i-th best: two articles may swap
        # only where their scores differ by float32 noise (e.g. two purchases of one day,
        # each its own nearest neighbour at similarity 1 +- 1e-7)
        exact = np.array([ref_score.get(a, -np.inf) for a in mine["article_id"]])
        assert np.allclose(exact, ref["score"].head(mine.height).to_numpy(), rtol=0, atol=1e-6)
        assert np.allclose(mine["score"].to_numpy(), exact, rtol=0, atol=1e-5)


def test_rows_are_scaled_to_their_largest_absolute_value_in_place() -> None:
    from scipy import sparse

    from hm_pipeline.candidates.similarity import scale_rows_to_best

    dense = np.array([[0.0, -4.0, 2.0], [0.0, 0.0, 0.0], [3.0, 0.0, 1.5], [0.0, 0.0, -0.5]])
    m = sparse.csr_matrix(dense)
    scale_rows_to_best(m)
    expected = [[0.0, -1.0, 0.5], [0.0, 0.0, 0.0], [1.0, 0.0, 0.5], [0.0, 0.0, -1.0]]
    assert np.array_equal(m.toarray(), expected)
    assert m.nnz == 5
