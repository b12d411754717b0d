"""One candidate asset per registered source and week."""

import dagster as dg
import polars as pl

from hm_pipeline.candidates import REGISTRY, CandidateSource, SourceContext
from hm_pipeline.models.common import save_model
from hm_pipeline.partitions import CALENDAR, weekly_partitions
from hm_pipeline.resources import ModelStore
from hm_pipeline.weeks import parse_week

GROUP = "candidates"


class CandidateConfig(dg.Config):
    """Candidates kept per customer: k in weeks with labels (recall@200 is reported), fewer in
    the prediction week, where only the rankers' union (each source's top 40) reads them."""

    k: int = 200
    prediction_week_k: int = 50


def candidate_asset(source: type[CandidateSource]) -> dg.AssetsDefinition:
    """The weekly asset of one source: its top-k for the week's customers to score."""

    @dg.asset(
        name=f"candidates_{source.name}",
        group_name=GROUP,
        partitions_def=weekly_partitions,
        description=(source.__doc__ or "").strip(),
        pool="candidates",
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
        src = source(k=k)
        out = src.generate(transactions, customers_to_score["customer_id"], week, ctx)
        trained = getattr(src, "model", None)
        if trained is not None:  # learned sources: keep the weights and what made them
            folder = save_model(
                model_store.folder(source.name, context.partition_key),
                trained,
                {"source": source.name, "week": context.partition_key, **src.settings()},
                users=src.users.ids,
                items=src.items.ids,
            )
            context.add_output_metadata({"model": dg.MetadataValue.path(str(folder))})
        covered = out["customer_id"].n_unique()
        context.add_output_metadata(
            {"customers_with_candidates": covered, "customers_to_score": customers_to_score.height}
        )
        return out

    return _candidates


candidate_assets = [candidate_asset(cls) for cls in REGISTRY.values()]
