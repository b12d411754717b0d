"""User-kNN against a brute-force reference: cosine of IDF-weighted purchase vectors, each
customer's `neighbours` most similar others (ties: the lower customer id), and a candidate's
score the summed similarity of the neighbours who bought it."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl

from hm_pipeline.candidates import SourceContext
from hm_pipeline.candidates.heuristics import CustomerSimilarity

CUTOFF = date(2020, 9, 2)


def reference_scores(tx: pl.DataFrame, days: int, neighbours: int) -> dict:
    """{customer_id: {article_id: score}} for every customer of the window, dense numpy."""
    inter = (
        tx.filter(pl.col("t_dat").is_between(CUTOFF - timedelta(days=days), CUTOFF, "left"))
        .select("customer_id", "article_id")
        .unique()
    )
    cust, c = np.unique(inter["customer_id"].to_numpy(), return_inverse=True)
    arts, a = np.unique(inter["article_id"].to_numpy(), return_inverse=True)
    bought = np.zeros((len(cust), len(arts)))
    bought[c, a] = 1
    idf = np.log(len(cust) / bought.sum(axis=0)) + 1e-3
    x = bought * idf
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    sim = x @ x.T
    out = {}
    for i in range(len(cust)):
        others = np.flatnonzero((np.arange(len(cust)) != i) & (sim[i] > 0))
        near = others[np.lexsort((others, -sim[i, others]))][:neighbours]
        score = sim[i, near] @ bought[near]
        out[int(cust[i])] = {int(arts[j]): score[j] for j in np.flatnonzero(score > 0)}
    return out


def test_user_knn_scores_are_the_neighbours_summed_similarities(tiny_tables) -> None:
    tx = tiny_tables["transactions"]
    ctx = SourceContext(tiny_tables["articles"], tiny_tables["customers"])
    src = CustomerSimilarity(k=10, days=28, neighbours=8, chunk=7)
    customers = tx.filter(pl.col("t_dat") < CUTOFF)["customer_id"].unique().sort().head(80)
    got = src.generate(tx.lazy(), customers, CUTOFF, ctx)
    ref = reference_scores(tx, 28, 8)
    assert got["customer_id"].n_unique() > 20
    for (cust,), rows in got.group_by(["customer_id"]):
        mine = ref[cust]
        # every listed score is the reference's, and nothing left out scores higher
        listed = rows["article_id"].to_list()
        assert np.allclose(rows["score"].to_numpy(), [mine[a] for a in listed], rtol=1e-4)
        left = [v for a, v in mine.items() if a not in set(listed)]
        assert len(listed) == min(10, len(mine))
        assert not left or max(left) <= rows["score"].min() + 1e-5
