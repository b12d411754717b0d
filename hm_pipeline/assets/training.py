"""Training data for the learned models: negative samples per week."""

import dagster as dg
import polars as pl

from hm_pipeline import negatives
from hm_pipeline.partitions import weekly_partitions
from hm_pipeline.weeks import parse_week


class NegativeSamplingConfig(dg.Config):
    """The strategy (loo_random, loo_unpopular, weekly_random, neighbourhood) and counts: the
    seed's 5 negatives per positive for NeuMF, or 30 per customer for ranker training sets."""

    strategy: str = "loo_random"
    n: int = 5
    per: str = "positive"  # or "customer"
    window_days: int = 91
    seed: int = 0


@dg.asset(group_name="training", partitions_def=weekly_partitions)
def negative_samples(
    context: dg.AssetExecutionContext,
    config: NegativeSamplingConfig,
    transactions: pl.LazyFrame,
    articles: pl.DataFrame,
) -> pl.DataFrame:
    """Positives from the window before W and negatives the customer never bought in it."""
    out = negatives.sample_negatives(
        transactions,
        articles,
        parse_week(context.partition_key),
        config.strategy,
        config.n,
        config.seed,
        window_days=config.window_days,
        per=config.per,
    )
    labels = out.group_by("label").len().sort("label")
    context.add_output_metadata(
        {
            "rows_by_label": dg.MetadataValue.json({str(k): v for k, v in labels.iter_rows()}),
            "customers": out["customer_id"].n_unique(),
            "strategy": config.strategy,
        }
    )
    return out
