"""Windowed customer and article features, computed from the history before a week.

Every function takes the history as a LazyFrame of the typed transactions table and a cutoff
(the week's Wednesday); rows on or after the cutoff are ignored, so a feature for week W can
never see W. Windows end at the cutoff: 3 months, 6 months, 1 year and lifetime.
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from hm_pipeline.splits import history as history_before

WINDOWS: dict[str, int | None] = {"3m": 91, "6m": 182, "1y": 364, "all": None}


def _in_window(cutoff: date, days: int | None) -> pl.Expr:
    if days is None:
        return pl.col("t_dat").is_not_null()  # a column, so that .sum() counts rows
    return pl.col("t_dat") >= cutoff - timedelta(days=days)


def customer_features(history: pl.LazyFrame, cutoff: date) -> pl.LazyFrame:
    """Per customer and window: n_sales_channel, t_price, u_articles, t_transactions,
    u_active_days; plus days_since_last_purchase. One pass over the history."""
    aggs = []
    for name, days in WINDOWS.items():
        w = _in_window(cutoff, days)
        aggs += [
            pl.col("sales_channel_id").filter(w).n_unique().alias(f"n_sales_channel_{name}"),
            # float64 and rounded: parallel sums of float32 differ in the last bits run to run
            pl.col("price").cast(pl.Float64).filter(w).sum().round(7).alias(f"t_price_{name}"),
            pl.col("article_id").filter(w).n_unique().alias(f"u_articles_{name}"),
            w.sum().alias(f"t_transactions_{name}"),
            pl.col("t_dat").filter(w).n_unique().alias(f"u_active_days_{name}"),
        ]
    aggs.append(
        (pl.lit(cutoff) - pl.col("t_dat").max()).dt.total_days().alias("days_since_last_purchase")
    )
    return (
        history_before(history, cutoff)
        .group_by("customer_id")
        .agg(aggs)
        .with_columns(
            pl.col(pl.UInt32).cast(pl.Int32), pl.col(pl.Float32, pl.Float64).cast(pl.Float32)
        )
        .sort("customer_id")
    )


def article_features(history: pl.LazyFrame, customers: pl.LazyFrame, cutoff: date) -> pl.LazyFrame:
    """Per article and window: u_customers, t_purchases, latest_price, discount (latest price
    against the window's highest), article_availability (days between first and last sale),
    median_age_buyers; plus sales in the last week, the week before, and the trend."""
    hist = history_before(history, cutoff).join(
        customers.select("customer_id", "age"), on="customer_id", how="left"
    )
    aggs = []
    for name, days in WINDOWS.items():
        w = _in_window(cutoff, days)
        # the median price paid on the window's last sale day (row order inside a group is not
        # guaranteed, so "the last row" would not be deterministic)
        last_day = pl.col("t_dat").filter(w).max()
        latest = pl.col("price").filter(w & (pl.col("t_dat") == last_day)).median()
        aggs += [
            pl.col("customer_id").filter(w).n_unique().alias(f"u_customers_{name}"),
            w.sum().alias(f"t_purchases_{name}"),
            latest.alias(f"latest_price_{name}"),
            (1 - latest / pl.col("price").filter(w).max()).alias(f"discount_{name}"),
            (pl.col("t_dat").filter(w).max() - pl.col("t_dat").filter(w).min())
            .dt.total_days()
            .alias(f"article_availability_{name}"),
            pl.col("age").filter(w).median().alias(f"median_age_buyers_{name}"),
        ]
    last_week = pl.col("t_dat") >= cutoff - timedelta(days=7)
    prev_week = pl.col("t_dat").is_between(
        cutoff - timedelta(days=14), cutoff - timedelta(days=7), closed="left"
    )
    aggs += [last_week.sum().alias("sales_last_week"), prev_week.sum().alias("sales_prev_week")]
    return (
        hist.group_by("article_id")
        .agg(aggs)
        .with_columns(
            ((pl.col("sales_last_week") + 1) / (pl.col("sales_prev_week") + 1)).alias("trend"),
        )
        .with_columns(pl.col(pl.UInt32).cast(pl.Int32), pl.col(pl.Float64).cast(pl.Float32))
        .sort("article_id")
    )
