"""Windowed features on hand-made transactions."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from hm_pipeline.features import article_features, customer_features
from hm_pipeline.schema import TRANSACTIONS_SCHEMA

CUTOFF = date(2020, 9, 16)


def _tx(rows: list[tuple]) -> pl.LazyFrame:
    return pl.DataFrame(rows, schema=TRANSACTIONS_SCHEMA, orient="row").lazy()


@pytest.fixture
def tx() -> pl.LazyFrame:
    return _tx(
        [
            (date(2019, 1, 10), 1, 100, 0.05, 1),  # lifetime only
            (date(2020, 5, 1), 1, 100, 0.04, 2),  # 6 months
            (date(2020, 9, 1), 1, 200, 0.02, 2),  # 3 months
            (date(2020, 9, 1), 1, 200, 0.02, 2),  # identical row: two units
            (date(2020, 9, 10), 2, 100, 0.03, 1),  # last week
            (date(2020, 9, 16), 1, 300, 0.99, 1),  # on the cutoff: never seen
        ]
    )


def test_customer_features_by_window(tx: pl.LazyFrame) -> None:
    f = customer_features(tx, CUTOFF).collect()
    c1 = f.filter(pl.col("customer_id") == 1).row(0, named=True)
    assert c1["t_transactions_3m"] == 2 and c1["u_articles_3m"] == 1 and c1["u_active_days_3m"] == 1
    assert c1["t_transactions_6m"] == 3 and c1["n_sales_channel_6m"] == 1
    assert c1["t_transactions_all"] == 4 and c1["n_sales_channel_all"] == 2
    assert c1["t_price_all"] == pytest.approx(0.13)
    assert c1["u_articles_all"] == 2
    assert c1["days_since_last_purchase"] == 15
    assert f.height == 2  # nothing from the cutoff day
    assert "t_transactions_1y" in f.columns


def test_article_features_by_window(tx: pl.LazyFrame) -> None:
    customers = pl.LazyFrame({"customer_id": [1, 2], "age": [20.0, 40.0]})
    f = article_features(tx, customers, CUTOFF).collect()
    a100 = f.filter(pl.col("article_id") == 100).row(0, named=True)
    assert a100["u_customers_all"] == 2 and a100["t_purchases_all"] == 3
    assert a100["latest_price_all"] == pytest.approx(0.03)
    assert a100["discount_all"] == pytest.approx(1 - 0.03 / 0.05)
    assert a100["article_availability_all"] == (date(2020, 9, 10) - date(2019, 1, 10)).days
    assert a100["median_age_buyers_all"] == pytest.approx(20.0)  # 20, 20, 40
    assert a100["t_purchases_3m"] == 1 and a100["u_customers_3m"] == 1
    assert a100["sales_last_week"] == 1 and a100["sales_prev_week"] == 0
    assert a100["trend"] == pytest.approx(2.0)
    assert 300 not in f["article_id"].to_list()
