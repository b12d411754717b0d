"""Weekly splits: the history before a week, the week's labels, and its training weeks."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from hm_pipeline.weeks import training_weeks, week_end


def history(transactions: pl.LazyFrame, week: date) -> pl.LazyFrame:
    """Everything strictly before the week: all a model for `week` may learn from."""
    return transactions.filter(pl.col("t_dat") < week)


def labels(transactions: pl.LazyFrame, week: date) -> pl.LazyFrame:
    """The week's purchases (Wednesday .. Tuesday)."""
    return transactions.filter(pl.col("t_dat").is_between(week, week_end(week)))


def split_summary(transactions: pl.LazyFrame, week: date, n_training_weeks: int) -> pl.DataFrame:
    """One row describing the split of `week`: bounds, sizes and the ranker's training weeks."""
    sizes = transactions.select(
        (pl.col("t_dat") < week).sum().alias("history_rows"),
        pl.col("t_dat").is_between(week, week_end(week)).sum().alias("label_rows"),
        pl.col("customer_id")
        .filter(pl.col("t_dat").is_between(week, week_end(week)))
        .n_unique()
        .alias("label_customers"),
    ).collect()
    return pl.DataFrame(
        {
            "week": [week],
            "week_end": [week_end(week)],
            "history_end": [week - timedelta(days=1)],
            "training_weeks": [training_weeks(week, n_training_weeks)],
        }
    ).hstack(sizes.cast(pl.Int64))


def customers_to_score(
    transactions: pl.LazyFrame, customers: pl.LazyFrame, week: date, has_labels: bool
) -> pl.DataFrame:
    """Who gets recommendations for `week`: its buyers when it has labels (evaluation), else
    every customer (the prediction week)."""
    if has_labels:
        who = labels(transactions, week).select("customer_id").unique()
    else:
        who = customers.select("customer_id")
    return who.sort("customer_id").collect()
