"""The weekly evaluation's pieces."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from hm_pipeline.evaluation import (
    EVALUATION_COLUMNS,
    blend,
    evaluate_method,
    evaluation_table,
    markdown_table,
    sample_buyers,
    summarize,
    to_submission,
)
from hm_pipeline.metrics import hit_rate_at_k, map_at_k, ndcg_at_k, recall_at_k


def _ranked(rows: dict[int, list[int]]) -> pl.DataFrame:
    return pl.DataFrame(
        [(c, a, -float(r), r + 1) for c, arts in rows.items() for r, a in enumerate(arts)],
        schema={
            "customer_id": pl.Int32,
            "article_id": pl.Int32,
            "score": pl.Float32,
            "rank": pl.Int32,
        },
        orient="row",
    )


def test_blend_keeps_the_first_then_fills_without_duplicates() -> None:
    first = _ranked({1: [10, 11]})
    second = _ranked({1: [11, 12, 13], 2: [12, 13]})
    out = blend(first, second, k=3)
    assert out.filter(pl.col("customer_id") == 1).sort("rank")["article_id"].to_list() == [
        10,
        11,
        12,
    ]
    assert out.filter(pl.col("customer_id") == 2).sort("rank")["article_id"].to_list() == [12, 13]


def test_evaluation_table_columns_and_values() -> None:
    labels = pl.DataFrame(
        {"customer_id": [1, 2], "article_id": [10, 20]},
        schema={"customer_id": pl.Int32, "article_id": pl.Int32},
    )
    methods = {"perfect": _ranked({1: [10], 2: [20]}), "wrong": _ranked({1: [99], 2: [98]})}
    table = evaluation_table(methods, labels, n_articles=100)
    assert table.columns == EVALUATION_COLUMNS
    perfect = table.filter(pl.col("method") == "perfect").row(0, named=True)
    assert perfect["map_at_12"] == 1.0 and perfect["recall_at_12"] == 1.0
    assert perfect["coverage_at_12"] == pytest.approx(0.02)
    assert perfect["recall_at_200"] is None  # a 1-deep ranking says nothing about recall@200
    assert table["method"].to_list() == ["perfect", "wrong"]
    assert "| perfect |" in markdown_table(table)


def test_evaluation_row_equals_each_metric_computed_on_its_own() -> None:
    """evaluate_method matches the lists with the purchases once for every recall@k and once
    for the @12 metrics: each value must equal the metric's own function on the list (and the
    list's top 12), with lists of uneven length, duplicated articles and customers without a
    list or without purchases."""
    rng = np.random.default_rng(7)
    rows = []
    for c in range(400):
        n = int(rng.integers(0, 230))
        arts = rng.integers(0, 150, n)  # repeats: an article may appear twice in a list
        rows += [(c, int(a), float(-r), r + 1) for r, a in enumerate(arts)]
    ranked = pl.DataFrame(
        rows,
        schema={"customer_id": pl.Int32, "article_id": pl.Int32, "score": pl.Float32,
                "rank": pl.Int32},
        orient="row",
    )  # fmt: skip
    buyers = rng.choice(450, 300, replace=False)
    labels = pl.DataFrame(
        {
            "customer_id": np.repeat(buyers, 6).astype(np.int32),
            "article_id": rng.integers(0, 150, len(buyers) * 6).astype(np.int32),
        }
    )
    row = evaluate_method("m", ranked, labels, n_articles=300)
    top12 = ranked.filter(pl.col("rank") <= 12)
    expected = {
        "map_at_12": map_at_k(top12, labels, 12),
        "hit_rate_at_12": hit_rate_at_k(top12, labels, 12),
        "ndcg_at_12": ndcg_at_k(top12, labels, 12),
        **{f"recall_at_{k}": recall_at_k(ranked, labels, k) for k in (12, 50, 100, 200)},
    }
    assert expected["recall_at_200"] > expected["recall_at_12"] > 0
    assert {k: row[k] for k in expected} == pytest.approx(expected, rel=1e-12)


def test_a_method_ranking_a_sample_is_evaluated_on_that_sample() -> None:
    """The oracle ranks a sample of the buyers: its row counts only them (a buyer it never
    ranked would score 0 and pull its MAP down), every other row counts all buyers."""
    labels = pl.DataFrame(
        {"customer_id": [1, 2, 3, 3], "article_id": [10, 20, 30, 31]},
        schema={"customer_id": pl.Int32, "article_id": pl.Int32},
    )
    sample = sample_buyers(labels, 2, seed=3)
    assert sample.len() == 2 and sample.is_sorted() and set(sample) <= {1, 2, 3}
    assert sample.to_list() == sample_buyers(labels, 2, seed=3).to_list()
    assert sample_buyers(labels, 0).to_list() == sample_buyers(labels, 5).to_list() == [1, 2, 3]
    perfect = {1: [10], 2: [20], 3: [30, 31]}
    oracle = _ranked({c: perfect[c] for c in sample})
    methods = {"oracle": oracle, "all": _ranked(perfect)}
    table = evaluation_table(methods, labels, 100, subsets={"oracle": sample})
    rows = {r["method"]: r for r in table.iter_rows(named=True)}
    assert rows["oracle"]["n_customers"] == 2 and rows["oracle"]["map_at_12"] == 1.0
    assert rows["all"]["n_customers"] == 3 and rows["all"]["map_at_12"] == 1.0
    unsampled = evaluation_table(methods, labels, 100)
    assert unsampled.filter(pl.col("method") == "oracle")["map_at_12"].item() < 1.0


def test_submission_format() -> None:
    ids = pl.DataFrame(
        {"customer_id": [1], "customer_hex": ["ab" * 32]},
        schema={"customer_id": pl.Int32, "customer_hex": pl.String},
    )
    sub = to_submission(_ranked({1: [108775015, 110065001]}), ids)
    assert sub.rows() == [("ab" * 32, "0108775015 0110065001")]


def test_summary_over_weeks() -> None:
    by_week = pl.DataFrame(
        {"method": ["a", "a", "b"], "map_at_12": [0.1, 0.3, 0.2], "week": ["w1", "w2", "w1"]}
    )
    for c in EVALUATION_COLUMNS:
        if c not in by_week.columns:
            by_week = by_week.with_columns(pl.lit(0.0).alias(c))
    s = summarize(by_week)
    a = s.filter(pl.col("method") == "a").row(0, named=True)
    assert (
        a["weeks"] == 2
        and a["map_at_12"] == pytest.approx(0.2)
        and a["min_map_at_12"] == pytest.approx(0.1)
    )


def test_weekly_map_table_reads_only_week_files(tmp_path) -> None:
    from hm_pipeline.evaluation import weekly_map_table

    row = dict.fromkeys(EVALUATION_COLUMNS, 0.5) | {"method": "m", "n_customers": 3}
    for week in ("2020-09-09", "2020-09-16"):
        pl.DataFrame([row]).write_csv(tmp_path / f"evaluation_{week}.csv")
    pl.DataFrame({"method": ["m"], "map_at_12": [9.9]}).write_csv(
        tmp_path / "evaluation_summary.csv"
    )
    md = weekly_map_table(tmp_path)
    assert "| m | 0.5000 | 0.5000 | 0.5000 |" in md and "9.9" not in md and "summary" not in md
    assert md.count("by validation week") == 3  # MAP@12, hit rate@12, NDCG@12


def test_weekly_methods_add_the_blend_and_the_oracle() -> None:
    from hm_pipeline.evaluation import weekly_methods

    sources = {"repurchase": _ranked({1: [10]}), "popularity_last_week": _ranked({1: [10, 11]})}
    methods = weekly_methods(sources, oracle=_ranked({1: [12]}))
    assert set(methods) == {
        "repurchase",
        "popularity_last_week",
        "repurchase_then_popular",
        "oracle",
    }
    assert methods["repurchase_then_popular"]["article_id"].to_list() == [10, 11]
    assert "oracle" not in weekly_methods(sources)


def test_without_history_keeps_only_first_time_buyers() -> None:
    from datetime import date

    from hm_pipeline.evaluation import without_history

    history = pl.DataFrame(
        {"t_dat": [date(2020, 9, 1), date(2020, 9, 16)], "customer_id": [1, 2]}
    ).lazy()
    labels = pl.DataFrame({"customer_id": [1, 2, 3], "article_id": [10, 11, 12]})
    # customer 2's only purchase is in the week itself: still cold
    assert without_history(labels, history, date(2020, 9, 16))["customer_id"].to_list() == [2, 3]
