"""Negative sampling: every strategy seeded, vectorized, never a bought article."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from hm_pipeline.negatives import STRATEGIES, engagement, sample_negatives

CUTOFF = date(2020, 9, 2)


@pytest.fixture(scope="module")
def tables(tiny_tables: dict):
    return tiny_tables["transactions"].lazy(), tiny_tables["articles"]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_strategy_contract(tables, strategy: str) -> None:
    tx, articles = tables
    out = sample_negatives(tx, articles, CUTOFF, strategy, n=5, seed=3)
    assert set(out["strategy"]) == {strategy} and set(out["label"]) == {0, 1}
    # never a negative the customer bought in the window (91 days before the cutoff)
    window = tx.filter(
        pl.col("t_dat").is_between(CUTOFF - timedelta(days=91), CUTOFF, closed="left")
    )
    bought = window.select("customer_id", "article_id").unique().collect()
    negs = out.filter(pl.col("label") == 0)
    assert negs.join(bought, on=["customer_id", "article_id"], how="semi").height == 0
    # positives are real purchases from the window, before the cutoff
    pos = out.filter(pl.col("label") == 1)
    assert pos.join(bought, on=["customer_id", "article_id"], how="anti").height == 0
    assert not out.select("customer_id", "week", "article_id").is_duplicated().any()
    assert negs.join(articles, on="article_id", how="anti").height == 0
    # 5 negatives per positive (a customer may come up short only if the pool runs dry)
    counts = (
        pos.group_by("customer_id")
        .len()
        .join(negs.group_by("customer_id").len(), on="customer_id", suffix="_neg")
    )
    assert (counts["len_neg"] <= counts["len"] * 5).all()
    assert (counts["len_neg"] == counts["len"] * 5).mean() > 0.95
    # seeded: same seed, same rows; another seed, other negatives
    assert sample_negatives(tx, articles, CUTOFF, strategy, n=5, seed=3).equals(out)
    assert not sample_negatives(tx, articles, CUTOFF, strategy, n=5, seed=4).equals(out)


def test_leave_one_out_holds_out_the_last_purchase(tables) -> None:
    tx, articles = tables
    out = sample_negatives(tx, articles, CUTOFF, "loo_random", n=3, seed=0)
    pos = out.filter(pl.col("label") == 1)
    assert pos.group_by("customer_id").len()["len"].max() == 1
    last_day = (
        tx.filter(pl.col("t_dat") < CUTOFF)
        .group_by("customer_id")
        .agg(pl.col("t_dat").max())
        .collect()
    )
    got = pos.join(tx.collect(), on=["customer_id", "article_id"]).join(
        last_day, on=["customer_id", "t_dat"]
    )
    assert got["customer_id"].n_unique() == pos.height


def test_per_customer_totals_for_ranker_sets(tables) -> None:
    tx, articles = tables
    out = sample_negatives(tx, articles, CUTOFF, "neighbourhood", n=30, seed=0, per="customer")
    assert out.filter(pl.col("label") == 0).group_by("customer_id").len()["len"].max() <= 30


def test_unpopular_negatives_come_from_the_bottom(tables) -> None:
    tx, articles = tables
    out = sample_negatives(tx, articles, CUTOFF, "loo_unpopular", n=5, seed=0)
    eng = (
        articles.select(pl.col("article_id").cast(pl.Int32))
        .join(engagement(tx, CUTOFF), on="article_id", how="left")
        .with_columns(pl.col("engagement_all").fill_null(0.0))
    )
    negs = out.filter(pl.col("label") == 0).join(eng, on="article_id")
    assert negs["engagement_all"].median() < eng["engagement_all"].median()


def test_neighbourhood_negatives_are_near_recent_purchases(tables) -> None:
    tx, articles = tables
    out = sample_negatives(tx, articles, CUTOFF, "neighbourhood", n=5, seed=0)
    types = articles.select(pl.col("article_id").cast(pl.Int32), "product_type_no")
    pos_types = (
        out.filter(pl.col("label") == 1)
        .join(types, on="article_id")
        .select("customer_id", "product_type_no")
    )
    negs = out.filter(pl.col("label") == 0).join(types, on="article_id")
    far = negs.join(pos_types, on=["customer_id", "product_type_no"], how="anti").height
    # most are hard negatives; small neighbourhoods that run dry are topped up at random
    assert far < 0.2 * negs.height


def test_unknown_strategy_is_refused(tables) -> None:
    tx, articles = tables
    with pytest.raises(ValueError, match="unknown strategy"):
        sample_negatives(tx, articles, CUTOFF, "magic", n=5, seed=0)
