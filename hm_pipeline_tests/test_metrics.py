"""Metrics on hand-computed examples."""

from __future__ import annotations

import math

import polars as pl
import pytest

from hm_pipeline.metrics import hit_rate_at_k, map_at_k, ndcg_at_k, recall_at_k


def _preds(rows: dict[int, list[int]]) -> pl.DataFrame:
    return pl.DataFrame(
        [(c, a, r + 1) for c, arts in rows.items() for r, a in enumerate(arts)],
        schema=["customer_id", "article_id", "rank"],
        orient="row",
    )


def _truth(rows: dict[int, list[int]]) -> pl.DataFrame:
    return pl.DataFrame(
        [(c, a) for c, arts in rows.items() for a in arts],
        schema=["customer_id", "article_id"],
        orient="row",
    )


def test_map_at_12_matches_hand_computation() -> None:
    # customer 1 bought {10, 30}; predicted 10 (hit), 20, 30 (hit): AP = (1/1 + 2/3) / 2
    # customer 2 bought {40}; predicted 50, 40 (hit): AP = (1/2) / 1
    # customer 3 bought {60} and got no prediction: AP = 0
    # customer 4 has predictions but bought nothing: not averaged
    preds = _preds({1: [10, 20, 30], 2: [50, 40], 4: [70]})
    truth = _truth({1: [10, 30, 30], 2: [40], 3: [60]})
    expected = ((1 + 2 / 3) / 2 + 0.5 + 0.0) / 3
    assert map_at_k(preds, truth, k=12) == pytest.approx(expected)


def test_map_divides_by_min_of_bought_and_k() -> None:
    # 3 purchases, k=2: a perfect top-2 scores 1, not 2/3
    preds = _preds({1: [1, 2, 3]})
    truth = _truth({1: [1, 2, 3]})
    assert map_at_k(preds, truth, k=2) == pytest.approx(1.0)
    # one hit at rank 2 with k=2: precision 1/2 over min(3, 2)
    assert map_at_k(_preds({1: [9, 1]}), truth, k=2) == pytest.approx(0.25)


def test_items_past_k_do_not_count() -> None:
    preds = _preds({1: list(range(100, 112)) + [5]})
    truth = _truth({1: [5]})
    assert map_at_k(preds, truth, k=12) == 0.0
    assert hit_rate_at_k(preds, truth, k=12) == 0.0
    assert hit_rate_at_k(preds, truth, k=13) == 1.0


def test_duplicate_predictions_count_once() -> None:
    preds = _preds({1: [5, 5, 6]})
    truth = _truth({1: [5, 6]})
    # after removing the duplicate: 5 (rank 1), 6 (rank 2) -> AP = 1
    assert map_at_k(preds, truth) == pytest.approx(1.0)


def test_hit_rate_ndcg_recall() -> None:
    preds = _preds({1: [1, 2, 3], 2: [4, 5, 6]})
    truth = _truth({1: [3], 2: [7, 8]})
    assert hit_rate_at_k(preds, truth, k=3) == pytest.approx(0.5)
    # customer 1: one hit at rank 3 -> DCG = 1/log2(4) = 0.5, IDCG = 1 -> 0.5; customer 2: 0
    assert ndcg_at_k(preds, truth, k=3) == pytest.approx(0.25)
    assert recall_at_k(preds, truth, k=3) == pytest.approx(0.5)
    # two purchases, both found at ranks 1 and 3 -> DCG = 1 + 0.5, IDCG = 1 + 1/log2(3)
    preds2 = _preds({1: [7, 9, 8]})
    truth2 = _truth({1: [7, 8]})
    assert ndcg_at_k(preds2, truth2, k=3) == pytest.approx(1.5 / (1 + 1 / math.log2(3)))


def test_lazy_frames_are_accepted() -> None:
    preds = _preds({1: [1]}).lazy()
    truth = _truth({1: [1]}).lazy()
    assert map_at_k(preds, truth) == 1.0
