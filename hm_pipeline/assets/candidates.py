"""One candidate asset per registered source and week."""

import os

import dagster as dg
import polars as pl

from hm_pipeline.candidates import REGISTRY, CandidateSource, SourceContext
from hm_pipeline.candidates.learned import (
    LEARNED_SOURCES,
    LearnedSource,
    keep_model,
    source_for_week,
    training_week,
)
from hm_pipeline.partitions import CALENDAR, weekly_partitions
from hm_pipeline.resources import ModelStore
from hm_pipeline.weeks import parse_week

GROUP = "candidates"


class CandidateConfig(dg.Config):
    """Candidates kept per customer: k in weeks with labels (recall@200 is reported), fewer in
    the prediction week, where only the rankers' union (each source's top 40) reads them."""

    k: int = 200
    prediction_week_k: int = 50
    retrain_every_weeks: int = int(os.environ.get("HM_RETRAIN_EVERY_WEEKS") or 1)
    """Learned sources: 1 trains a model for every week. n > 1 trains one every n weeks
    (counted from `retrain_from`) and serves the weeks between with it: its inputs (the
    customers' recent purchases, article sales) are read at each week's cutoff, only the
    weights are up to n-1 weeks old. At full scale this saves most of a run's training."""
    retrain_from: str = os.environ.get("HM_RETRAIN_FROM") or str(CALENDAR.partition_weeks[0])
    """The first training week; both defaults come from $HM_RETRAIN_EVERY_WEEKS and
    $HM_RETRAIN_FROM when set (so the CLI, the schedule and benchmarks can choose them)."""


def candidate_asset(source: type[CandidateSource]) -> dg.AssetsDefinition:
    """The weekly asset of one source: its top-k for the week's customers to score."""

    @dg.asset(
        name=f"candidates_{source.name}",
        group_name=GROUP,
        partitions_def=weekly_partitions,
        description=(source.__doc__ or "").strip(),
        # the torch models apart from the other sources: one of each may run beside the other
        pool="learned" if source in LEARNED_SOURCES else "candidates",
        ins={name: dg.AssetIn() for name in source.embeddings},
    )
    def _candidates(
        context: dg.AssetExecutionContext,
        config: CandidateConfig,
        model_store: ModelStore,
        transactions: pl.LazyFrame,
        articles: pl.DataFrame,
        customers: pl.DataFrame,
        customers_to_score: pl.DataFrame,
        **embeddings: pl.LazyFrame,
    ) -> pl.DataFrame:
        ctx = SourceContext(
            articles=articles,
            customers=customers,
            embeddings={name: lf.collect() for name, lf in embeddings.items()},
        )
        week = parse_week(context.partition_key)
        k = config.k if CALENDAR.has_labels(week) else config.prediction_week_k
        src, served_by = source(k=k), week
        if issubclass(source, LearnedSource):
            trained = training_week(
                week, config.retrain_every_weeks, parse_week(config.retrain_from)
            )
            src, served_by, fresh = source_for_week(
                source,
                k,
                week,
                trained,
                model_store.folder(source.name, str(trained)),
                transactions,
                ctx,
            )
            if served_by != week:
                context.log.info(
                    f"{source.name}: the model trained for {served_by} "
                    f"({'trained now' if fresh else 'restored'}) serves {week}"
                )
        out = src.generate(transactions, customers_to_score["customer_id"], week, ctx)
        if getattr(src, "model", None) is not None:  # learned: keep the weights and settings
            folder = keep_model(src, week, served_by, lambda w: model_store.folder(source.name, w))
            context.add_output_metadata(
                {
                    "model": dg.MetadataValue.path(str(folder)),
                    "model_trained_for": str(served_by),
                }
            )
        covered = out["customer_id"].n_unique()
        context.add_output_metadata(
            {"customers_with_candidates": covered, "customers_to_score": customers_to_score.height}
        )
        return out

    return _candidates


candidate_assets = [candidate_asset(cls) for cls in REGISTRY.values()]
