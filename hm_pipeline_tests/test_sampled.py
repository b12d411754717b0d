"""The sampled protocol (99 negatives) beside the full ranking, and model restore from the
store giving the scores the trained model gave."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from hm_pipeline import model_reports, sampled
from hm_pipeline.candidates import SourceContext
from hm_pipeline.candidates.learned import (
    LEARNED_SOURCES,
    MultVAESource,
    NeuMFSource,
    TwoTowerSource,
)
from hm_pipeline.models.common import save_model
from hm_pipeline.models.multvae import MultVAEConfig
from hm_pipeline.models.neumf import NeuMFConfig
from hm_pipeline.models.twotower import TwoTowerConfig
from hm_pipeline.splits import labels as week_labels

WEEK = date(2020, 9, 16)


def test_rank_counts_ties_as_half_and_unscorable_as_last() -> None:
    scores = np.array(
        [
            [5.0, 1, 2, 3],  # best: rank 0
            [1.0, 2, 3, 0],  # two better
            [2.0, 2, 2, 1],  # two ties -> 1
            [-np.inf, 1, -np.inf, -np.inf],  # one better, two ties -> 2
        ]
    )
    assert sampled.rank_of_first(scores).tolist() == [0, 2, 1, 2]


def test_hr_ndcg_by_hand() -> None:
    hr, ndcg = sampled.hr_ndcg(np.array([0, 1, 10, np.inf]), k=10)
    assert hr == pytest.approx(0.5)
    assert ndcg == pytest.approx((1 + 1 / np.log2(3)) / 4)


def test_held_out_is_a_first_day_purchase_of_every_buyer() -> None:
    labels = pl.DataFrame(
        {
            "customer_id": [1, 1, 1, 2],
            "article_id": [10, 11, 12, 10],
            "t_dat": [date(2020, 9, 18), date(2020, 9, 16), date(2020, 9, 16), date(2020, 9, 20)],
        }
    )
    held = sampled.held_out(labels)
    assert held["customer_id"].to_list() == [1, 2]
    assert held["article_id"][0] in (11, 12)
    assert held["article_id"][1] == 10


def test_negatives_are_distinct_and_never_bought(tiny_tables) -> None:
    tx = tiny_tables["transactions"].lazy()
    labels = week_labels(tx, WEEK).collect()
    held, sample = model_reports.sample_for_week(tx, labels, tiny_tables["articles"], WEEK)
    assert sample.shape == (held.height, 100)
    assert (sample[:, 0] == held["article_id"].to_numpy()).all()
    negs = pl.DataFrame(
        {
            "customer_id": np.repeat(held["customer_id"].to_numpy(), 99),
            "article_id": sample[:, 1:].ravel().astype(np.int32),
        }
    )
    assert negs.unique().height == negs.height
    bought = pl.concat(
        [
            tx.filter(pl.col("t_dat") < WEEK).select("customer_id", "article_id").collect(),
            labels.select("customer_id", "article_id"),
        ]
    )
    assert negs.join(bought, on=["customer_id", "article_id"], how="semi").height == 0
    assert negs["article_id"].is_in(tiny_tables["articles"]["article_id"].implode()).all()


def test_sampled_flatters_popularity_against_the_full_ranking(tiny_tables) -> None:
    """On real-looking data a held-out purchase beats 99 random articles far more often than it
    makes the top 10 of the whole catalogue."""
    from hm_pipeline.candidates.heuristics import PopularityLastWeek

    tx = tiny_tables["transactions"].lazy()
    labels = week_labels(tx, WEEK).collect()
    ctx = SourceContext(tiny_tables["articles"], tiny_tables["customers"])
    held, sample = model_reports.sample_for_week(tx, labels, ctx.articles, WEEK)
    ranked = PopularityLastWeek(k=200).generate(tx, held["customer_id"], WEEK, ctx)
    table = sampled.compare(
        {"pop": sampled.popularity_scorer(tx, WEEK)}, {"pop": ranked}, held, sample
    )
    row = table.row(0, named=True)
    assert row["sampled_hr_at_10"] > 2 * row["full_hr_at_10"]


FAST = {
    "neumf": lambda: NeuMFSource(k=50, config=NeuMFConfig(epochs=1)),
    "multvae": lambda: MultVAESource(k=50, config=MultVAEConfig(epochs=2)),
    "twotower": lambda: TwoTowerSource(k=50, config=TwoTowerConfig(epochs=1, train_weeks=2)),
}


@pytest.mark.parametrize("name", [cls.name for cls in LEARNED_SOURCES])
def test_restored_model_scores_like_the_trained_one(name, tiny_tables, tmp_path: Path) -> None:
    tx = tiny_tables["transactions"].lazy()
    ctx = SourceContext(tiny_tables["articles"], tiny_tables["customers"])
    buyers = week_labels(tx, WEEK).collect()["customer_id"].unique().sort()
    src = FAST[name]()
    out = src.generate(tx, buyers, WEEK, ctx)
    save_model(
        tmp_path,
        src.model,
        {"source": name, "week": str(WEEK), **src.settings()},
        users=src.users.ids,
        items=src.items.ids,
    )
    again = type(src).restore(tmp_path, tx, WEEK, ctx)
    customers = out["customer_id"].unique().sort().to_numpy()[:20]
    arts = np.tile(tiny_tables["articles"]["article_id"].to_numpy()[:30], (len(customers), 1))
    a, b = src.pair_scores(customers, arts), again.pair_scores(customers, arts)
    assert np.isfinite(a).any()
    assert np.allclose(a, b, equal_nan=True)
    # the candidate list's scores are the pair scores of its articles
    top = out.filter(pl.col("customer_id") == int(customers[0])).sort("rank")
    direct = src.pair_scores(customers[:1], top["article_id"].to_numpy()[None, :])[0]
    assert np.allclose(direct, top["score"].to_numpy(), atol=1e-4)
