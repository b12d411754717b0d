"""Per-week assets: the split, labels, the customers to score, and windowed features."""

import dagster as dg
import polars as pl

from hm_pipeline import features, splits
from hm_pipeline.partitions import CALENDAR, weekly_partitions
from hm_pipeline.weeks import parse_week

GROUP = "weekly"


class SplitConfig(dg.Config):
    """How many weeks before W a ranker trains on."""

    n_training_weeks: int = 4


def _week(context: dg.AssetExecutionContext):
    return parse_week(context.partition_key)


@dg.asset(group_name=GROUP, partitions_def=weekly_partitions)
def week_split(context: dg.AssetExecutionContext, config: SplitConfig, transactions: pl.LazyFrame):
    """Bounds and sizes of week W's split: history before W, W's labels, training weeks."""
    return splits.split_summary(transactions, _week(context), config.n_training_weeks)


@dg.asset(group_name=GROUP, partitions_def=weekly_partitions)
def labels(context: dg.AssetExecutionContext, transactions: pl.LazyFrame) -> pl.LazyFrame:
    """Week W's purchases: the only rows of W or later that anything may read."""
    return splits.labels(transactions, _week(context))


@dg.asset(group_name=GROUP, partitions_def=weekly_partitions)
def customers_to_score(
    context: dg.AssetExecutionContext, transactions: pl.LazyFrame, customers: pl.LazyFrame
) -> pl.DataFrame:
    """W's buyers in a validation week; every customer in the prediction week."""
    week = _week(context)
    return splits.customers_to_score(transactions, customers, week, CALENDAR.has_labels(week))


@dg.asset(group_name=GROUP, partitions_def=weekly_partitions)
def customer_features(
    context: dg.AssetExecutionContext, transactions: pl.LazyFrame
) -> pl.LazyFrame:
    """Windowed customer features (3m, 6m, 1y, lifetime) from the history before W."""
    return features.customer_features(transactions, _week(context))


@dg.asset(group_name=GROUP, partitions_def=weekly_partitions)
def article_features(
    context: dg.AssetExecutionContext, transactions: pl.LazyFrame, customers: pl.LazyFrame
) -> pl.LazyFrame:
    """Windowed article features (3m, 6m, 1y, lifetime) from the history before W."""
    return features.article_features(transactions, customers, _week(context))
