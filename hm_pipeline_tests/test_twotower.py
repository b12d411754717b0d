"""Two-tower: it learns a preference, it sees nothing from a training week's own future, it is
seeded, and retrieval over the catalogue is the exact top-k."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
import torch

from hm_pipeline.candidates import SourceContext
from hm_pipeline.candidates.learned import TwoTowerSource
from hm_pipeline.models.twotower import (
    ArticleTable,
    TwoTowerConfig,
    article_vectors,
    customer_bags,
    popularity_features,
    retrieve,
    train_twotower,
    training_set,
)

CUTOFF = date(2020, 9, 16)
FAST = TwoTowerConfig(epochs=2, train_weeks=3, batch_size=256, random_negatives=128)


def _toy_world(n_customers: int = 200, n_weeks: int = 6, seed: int = 0):
    """Even customers only ever buy articles 0-9 (product type 1), odd ones articles 10-19
    (type 2); each customer buys one article every week before the cutoff."""
    rng = np.random.default_rng(seed)
    rows = []
    for w in range(1, n_weeks + 1):
        day = CUTOFF - timedelta(days=7 * w - 2)
        cust = np.arange(n_customers)
        art = rng.integers(0, 10, n_customers) + 10 * (cust % 2)
        rows.append(
            pl.DataFrame({"t_dat": [day] * n_customers, "customer_id": cust, "article_id": art})
        )
    tx = pl.concat(rows).with_columns(
        pl.col("customer_id").cast(pl.Int32), pl.col("article_id").cast(pl.Int32)
    )
    articles = pl.DataFrame(
        {"article_id": np.arange(20, dtype=np.int32), "product_code": np.arange(20, dtype=np.int32)}
        | {
            c: np.where(np.arange(20) < 10, 1, 2).astype(np.int32)
            for c in [
                "product_type_no",
                "graphical_appearance_no",
                "colour_group_code",
                "perceived_colour_master_id",
                "department_no",
                "section_no",
                "garment_group_no",
            ]
        }
        | {"index_code": ["A"] * 20}
    )
    customers = pl.DataFrame(
        {"customer_id": np.arange(n_customers, dtype=np.int32), "age": np.full(n_customers, 30.0)}
    )
    return tx, articles, customers


def test_two_tower_learns_each_customers_side() -> None:
    tx, articles, customers = _toy_world()
    src = TwoTowerSource(k=10, config=TwoTowerConfig(epochs=6, train_weeks=4, batch_size=64))
    out = src.generate(
        tx.lazy(), customers["customer_id"], CUTOFF, SourceContext(articles, customers)
    )
    side_ok = out.with_columns(
        ((pl.col("article_id") // 10) == (pl.col("customer_id") % 2)).alias("ok")
    )["ok"].mean()
    assert side_ok > 0.9
    assert src.losses[-1] < src.losses[0]


def test_training_examples_only_see_their_own_past() -> None:
    tx, articles, customers = _toy_world()
    table = ArticleTable.of(articles)
    data = training_set(tx.lazy(), customers, table, CUTOFF, FAST)
    assert set(np.unique(data.cut)) == {0, 1, 2}
    # cut j's inputs equal those computed from the history truncated at that cut
    for j in range(3):
        cut = CUTOFF - timedelta(days=7 * (j + 1))
        truncated = tx.filter(pl.col("t_dat") < cut).lazy()
        assert np.array_equal(data.pop[j], popularity_features(truncated, table.index, cut))
        who = np.unique(
            tx.filter(pl.col("t_dat").is_between(cut, cut + timedelta(days=6)))[
                "customer_id"
            ].to_numpy()
        )
        rows = np.unique(data.bag_row[data.cut == j])
        expected = customer_bags(truncated, table.index, who, cut, FAST)
        assert (data.bags[rows] != expected).nnz == 0


def test_same_seed_same_model() -> None:
    tx, articles, customers = _toy_world()
    table = ArticleTable.of(articles)
    data = training_set(tx.lazy(), customers, table, CUTOFF, FAST)
    a, la = train_twotower(data, table, FAST)
    b, lb = train_twotower(data, table, FAST)
    assert la == lb
    assert all(
        torch.equal(x, y)
        for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


@pytest.mark.parametrize("chunk", [1, 3, 100])
def test_chunked_retrieval_is_the_exact_top_k(chunk: int) -> None:
    g = torch.Generator().manual_seed(0)
    users, items = torch.randn(7, 5, generator=g), torch.randn(30, 5, generator=g)
    scores, idx = retrieve(users, items, k=4, chunk=chunk)
    full = users @ items.T
    assert np.array_equal(idx, torch.topk(full, 4, dim=1).indices.numpy())
    assert np.allclose(scores, torch.topk(full, 4, dim=1).values.numpy())


def test_customers_without_history_get_their_age_vector(tiny_tables) -> None:
    ctx = SourceContext(tiny_tables["articles"], tiny_tables["customers"])
    src = TwoTowerSource(k=12, config=FAST)
    tx = tiny_tables["transactions"].lazy()
    buyers = set(
        tx.filter(pl.col("t_dat") < CUTOFF).select("customer_id").unique().collect()["customer_id"]
    )
    newcomers = [c for c in tiny_tables["customers"]["customer_id"].to_list() if c not in buyers][
        :5
    ]
    assert newcomers, "the tiny world has customers without history"
    out = src.generate(tx, pl.Series(newcomers, dtype=pl.Int32), CUTOFF, ctx)
    assert out.group_by("customer_id").len()["len"].to_list() == [12] * len(newcomers)


def test_ranking_customers_once_per_age_equals_ranking_each(tiny_tables) -> None:
    """Customers without recent purchases are retrieved once per age; every customer's list
    is still the exact top k of their own vector over the whole catalogue."""
    ctx = SourceContext(tiny_tables["articles"], tiny_tables["customers"])
    tx = tiny_tables["transactions"].lazy()
    src = TwoTowerSource(k=12, config=FAST, pool_days=None)
    wanted = np.sort(tiny_tables["customers"]["customer_id"].to_numpy())
    out = src.generate(tx, pl.Series(wanted, dtype=pl.Int32), CUTOFF, ctx)
    scores, idx = retrieve(
        src._customer_vectors(wanted), article_vectors(src.model, src._table, src._pop), 12
    )
    expected = pl.DataFrame(
        {
            "customer_id": np.repeat(wanted, 12).astype(np.int32),
            "article_id": src._table.index.ids[idx.ravel()].astype(np.int32),
            "score": scores.ravel(),
        }
    )
    bags = customer_bags(
        tx.filter(pl.col("t_dat") < CUTOFF), src._table.index, wanted, CUTOFF, FAST
    )
    cold = wanted[np.diff(bags.indptr) == 0]
    ages = tiny_tables["customers"].filter(pl.col("customer_id").is_in(cold))["age"]
    assert len(cold) > ages.n_unique() > 1, "several cold customers share an age"
    got = out.sort("customer_id", "rank")
    want = expected.join(got.select("customer_id", "article_id"), on=["customer_id", "article_id"])
    assert want.height == got.height == len(wanted) * 12
    assert np.allclose(
        got["score"].to_numpy(),
        expected.join(got, on=["customer_id", "article_id"])
        .sort("customer_id", "rank")["score"]
        .to_numpy(),
        atol=1e-5,
    )


def test_retrieval_ranks_only_the_articles_sold_in_the_pool_days(tiny_tables) -> None:
    ctx = SourceContext(tiny_tables["articles"], tiny_tables["customers"])
    tx = tiny_tables["transactions"].lazy()
    customers = tiny_tables["customers"]["customer_id"].head(40)
    recent = set(
        tx.filter(pl.col("t_dat").is_between(CUTOFF - timedelta(days=2), CUTOFF, closed="left"))
        .select("article_id")
        .unique()
        .collect()["article_id"]
    )
    whole = TwoTowerSource(k=50, config=FAST, pool_days=None).generate(tx, customers, CUTOFF, ctx)
    pooled = TwoTowerSource(k=50, config=FAST, pool_days=2).generate(tx, customers, CUTOFF, ctx)
    assert not set(whole["article_id"]) <= recent, "the whole catalogue reaches further"
    assert set(pooled["article_id"]) <= recent
    assert pooled.group_by("customer_id").len()["len"].min() == min(50, len(recent))
