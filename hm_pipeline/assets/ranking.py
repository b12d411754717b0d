"""Second stage per week: the candidate union, its features, LightGBM and DLRM rankers trained
on the weeks before W (never W itself) and scoring W's union."""

import warnings

import dagster as dg
import polars as pl

from hm_pipeline import plots
from hm_pipeline.candidates import REGISTRY
from hm_pipeline.lake import Chunked
from hm_pipeline.partitions import CALENDAR, weekly_partitions
from hm_pipeline.ranking import training
from hm_pipeline.ranking.features import FeatureInputs, feature_table
from hm_pipeline.ranking.shards import (
    N_SHARDS,
    restore_scorers,
    score_frames,
    score_shard,
    shard_keys,
)
from hm_pipeline.ranking.union import union_in_chunks
from hm_pipeline.recommend import RANKERS, scoring_rankers
from hm_pipeline.resources import ModelStore, Reports
from hm_pipeline.weeks import parse_week

GROUP = "ranking"
MAX_TRAINING_WEEKS = 2  # how far back the rankers' inputs reach (the warm-up weeks cover it)
CANDIDATE_INS = {f"candidates_{name}": dg.AssetIn() for name in REGISTRY}
EMBEDDING_INS = {
    name: dg.AssetIn() for name in ("text_embeddings", "image_embeddings", "metadata_embeddings")
}
# the features and labels of the training weeks before W (never W's)
with warnings.catch_warnings():  # allow_nonexistent_upstream_partitions is a beta parameter
    warnings.simplefilter("ignore")
    PAST_ONLY = dg.TimeWindowPartitionMapping(
        start_offset=-MAX_TRAINING_WEEKS, end_offset=-1, allow_nonexistent_upstream_partitions=True
    )
RANKER_INS = {
    "ranker_features": dg.AssetIn(partition_mapping=PAST_ONLY, metadata={"by_partition": True}),
    "labels": dg.AssetIn(partition_mapping=PAST_ONLY, metadata={"by_partition": True}),
}
RANKED_SCHEMA = {
    "customer_id": pl.Int32,
    "article_id": pl.Int32,
    "score": pl.Float32,
    "rank": pl.Int32,
}


class UnionConfig(dg.Config):
    """How deep into each source's list the union reaches, and how many candidates a customer
    keeps at most (best rank in any source first)."""

    per_source: int = 40
    """30 scored 23% fewer rows of the full-scale validation week for MAP@12 0.05578 against
    0.05583; 25 and 20 gave 0.05548 and 0.05539 (benchmarks/union-depth.md, `python
    benchmarks/ranker_cuts.py --study depth`)."""
    max_per_customer: int | None = None
    chunk_customer_ids: int = 50_000
    """The union is built for customer ids in ranges of this width, one range at a time, and
    written as it goes (the prediction week holds every customer: ranges of 200,000 peaked at
    18.2 GB at full scale, benchmarks/e2e-full.md)."""
    prediction_max_per_customer: int | None = 100
    """The prediction week's union (every customer, scored shard by shard) keeps at most this
    many candidates per customer, best rank in any source first. Cutting the full-scale
    validation week's union at 100 left the rankers' MAP@12 within 0.0003 of the uncut union
    at 36% of its rows (benchmarks/prediction-cap.md, `python benchmarks/prediction_cap.py`)."""


def union_limit(config: UnionConfig, week: str) -> int | None:
    """At most how many candidates a customer keeps in `week`'s union."""
    limits = [config.max_per_customer]
    if not CALENDAR.has_labels(parse_week(week)):
        limits.append(config.prediction_max_per_customer)
    kept = [n for n in limits if n is not None]
    return min(kept) if kept else None


@dg.asset(group_name=GROUP, partitions_def=weekly_partitions, ins=CANDIDATE_INS)
def ranker_candidates(
    context: dg.AssetExecutionContext, config: UnionConfig, **candidates: pl.LazyFrame
) -> Chunked:
    """One row per (customer, article) found by any source in its top `per_source`, with every
    source's score and rank (null when it did not find it); the prediction week's customers
    keep their best `prediction_max_per_customer`."""
    sources = {name.removeprefix("candidates_"): lf for name, lf in candidates.items()}
    limit = union_limit(config, context.partition_key)
    chunked = union_in_chunks(sources, config.per_source, limit, config.chunk_customer_ids)
    context.log.info(f"union in {len(chunked.bounds)} ranges of customer ids, at most {limit}")
    return chunked.table


def _inputs(week, transactions, articles, customers, customer_features, article_features, emb):
    """What build_features needs for `week`, from the assets' inputs."""
    return FeatureInputs(
        cutoff=parse_week(week),
        history=transactions,
        articles=articles,
        customers=customers,
        customer_features=customer_features,
        article_features=article_features,
        embeddings={k: v.collect() for k, v in emb.items()},
    )


@dg.asset(
    group_name=GROUP,
    partitions_def=weekly_partitions,
    ins={**EMBEDDING_INS, "copurchase_embeddings": dg.AssetIn()},
)
def ranker_features(
    context: dg.AssetExecutionContext,
    ranker_candidates: pl.LazyFrame,
    customer_features: pl.LazyFrame,
    article_features: pl.LazyFrame,
    transactions: pl.LazyFrame,
    articles: pl.DataFrame,
    customers: pl.DataFrame,
    **embeddings: pl.LazyFrame,
) -> Chunked:
    """The feature table of W's union (one definition for both rankers), from the history
    before W only, written chunk by chunk of customers as it is built (the whole table is never
    in memory). Empty for the prediction week, whose (every customer's) features the rankers
    build chunk by chunk while scoring."""
    if not CALENDAR.has_labels(parse_week(context.partition_key)):
        context.add_output_metadata({"note": "prediction week: built by the rankers in chunks"})
        return Chunked([], schema={})
    inp = _inputs(
        context.partition_key,
        transactions,
        articles,
        customers,
        customer_features,
        article_features,
        embeddings,
    )
    return feature_table(ranker_candidates, inp)


class RankerConfig(dg.Config):
    """Training weeks (at most MAX_TRAINING_WEEKS), negatives per customer, list length, and
    the customers per chunk when the week's features are built while scoring."""

    n_training_weeks: int = MAX_TRAINING_WEEKS
    max_negatives: int = 20
    """Negatives per customer in the training rows (every positive kept): 20 against 30 left
    LightGBM's MAP@12 on the full-scale validation week within 0.0001 (0.0558 against 0.0559;
    the sign flipped between two worlds) on 32% fewer rows and 37-40% less training time
    (benchmarks/ranker-cuts.md, `python benchmarks/ranker_cuts.py`)."""
    k: int = 50
    chunk_customers: int = 20_000
    seed: int = 0
    prediction_rankers: list[str] | None = None
    """Which rankers score the prediction week's shards. None: only the one the final
    recommendations use (the better mean MAP@12 over the evaluated validation weeks); scoring
    every customer with both doubles the shards' model time."""


MODELS_SCHEMA = {"ranker": pl.String, "folder": pl.String, "train_rows": pl.Int64}


@dg.asset(group_name=GROUP, partitions_def=weekly_partitions, ins=RANKER_INS, pool="torch")
def ranker_models(
    context: dg.AssetExecutionContext,
    config: RankerConfig,
    model_store: ModelStore,
    reports: Reports,
    ranker_features: dict,
    labels: dict,
) -> pl.DataFrame:
    """LightGBM lambdarank (early stopping on the latest training week, refit on all) and DLRM
    (best epoch by the latest week's MAP@12), both learning from the feature tables of the
    weeks before W labelled with those weeks' purchases (never W's), saved to the model store;
    one row per ranker saying where. Reads nothing of W itself, so it trains while W's
    candidates are still being found."""
    week = context.partition_key
    if parse_week(week) in CALENDAR.warmup_weeks:
        context.add_output_metadata({"note": f"{week} is a warm-up week: no rankers to train"})
        return pl.DataFrame(schema=MODELS_SCHEMA)
    if config.n_training_weeks > MAX_TRAINING_WEEKS:
        raise dg.Failure(f"n_training_weeks is at most {MAX_TRAINING_WEEKS}")
    try:  # the feature tables stay lazy: only the sampled rows are read
        trained = training.train_rankers(
            ranker_features,
            {w: lf.collect() for w, lf in labels.items()},
            week,
            config.n_training_weeks,
            config.max_negatives,
            config.seed,
        )
    except ValueError as exc:
        raise dg.Failure(str(exc)) from exc
    folder = model_store.folder("ranker_lightgbm", week)
    dlrm_folder = model_store.folder("ranker_dlrm", week)
    trained.save(folder, dlrm_folder)
    lgb_info = trained.lightgbm_info
    png = plots.feature_importance(
        lgb_info["importance_gain"], reports.path(f"ranker_importance_{week}.png")
    )
    context.add_output_metadata(
        {
            "lightgbm": dg.MetadataValue.json(
                {k: v for k, v in lgb_info.items() if k != "importance_gain"}
            ),
            "dlrm": dg.MetadataValue.json(trained.dlrm_info),
            "importance": dg.MetadataValue.md(
                plots.markdown_image(png, "feature importance (gain)")
            ),
            "model": dg.MetadataValue.path(str(folder)),
        }
    )
    rows = trained.train_rows
    return pl.DataFrame(
        {
            "ranker": list(RANKERS),
            "folder": [str(folder), str(dlrm_folder)],
            "train_rows": [rows, rows],
        },
        schema=MODELS_SCHEMA,
    )


@dg.multi_asset(
    group_name=GROUP,
    partitions_def=weekly_partitions,
    outs={
        "ranker_lightgbm": dg.AssetOut(
            description="LightGBM lambdarank's top k per customer for W (the model ranker_models "
            "trained on the weeks before W)."
        ),
        "ranker_dlrm": dg.AssetOut(
            description="DLRM's top k per customer for W (the model ranker_models trained on the "
            "weeks before W)."
        ),
    },
    ins={"ranker_features": dg.AssetIn(), "ranker_models": dg.AssetIn()},
    pool="torch",
)
def rankers(
    context: dg.AssetExecutionContext,
    config: RankerConfig,
    ranker_features: pl.LazyFrame,
    ranker_models: pl.DataFrame,
):
    """W's feature table scored by the models ranker_models trained for W (a range of
    customers at a time, LightGBM compiled as the prediction shards score). The prediction
    week has no table: prediction_scores ranks its customers shard by shard."""
    week = context.partition_key
    empty = pl.DataFrame(schema=RANKED_SCHEMA)
    if parse_week(week) in CALENDAR.warmup_weeks:
        note = f"{week} is a warm-up week: it only feeds the rankers of later weeks"
        for name in RANKERS:
            context.add_output_metadata({"note": note}, output_name=name)
        return empty, empty
    if not ranker_features.collect_schema().names():
        for name in RANKERS:
            context.add_output_metadata(
                {"note": f"{week} is the prediction week: prediction_scores ranks its customers "
                 f"in {N_SHARDS} shards with the models ranker_models trained"},
                output_name=name,
            )  # fmt: skip
        return empty, empty
    folders = dict(zip(ranker_models["ranker"], ranker_models["folder"], strict=True))
    try:
        scorers = restore_scorers(*(folders[name] for name in RANKERS))
    except (KeyError, FileNotFoundError) as exc:
        raise dg.Failure(f"{week}: no trained rankers ({exc}); materialize ranker_models") from exc
    chunks = training.customer_chunks(ranker_features, config.chunk_customers)
    top = score_frames(chunks, scorers, config.k)
    return tuple(top.filter(pl.col("ranker") == name).drop("ranker") for name in RANKERS)


customer_shards = dg.StaticPartitionsDefinition(shard_keys())
PREDICTION = dg.SpecificPartitionsPartitionMapping([str(CALENDAR.prediction_week)])
VALIDATION = dg.SpecificPartitionsPartitionMapping([str(w) for w in CALENDAR.validation_weeks])


@dg.asset(
    group_name=GROUP,
    partitions_def=customer_shards,
    ins={
        **EMBEDDING_INS,
        **{
            name: dg.AssetIn(partition_mapping=PREDICTION)
            for name in (
                "ranker_candidates",
                "customer_features",
                "article_features",
                "copurchase_embeddings",
            )
        },
    },
    deps=[
        dg.AssetDep("ranker_models", partition_mapping=PREDICTION),
        dg.AssetDep("evaluation_report", partition_mapping=VALIDATION),  # which ranker scores
    ],
    # no pool: the shards exist to run side by side (on several workers, or two on this
    # machine's two cores, about 4 GB each); the executor's max_concurrent bounds them
)
def prediction_scores(
    context: dg.AssetExecutionContext,
    config: RankerConfig,
    model_store: ModelStore,
    reports: Reports,
    ranker_candidates: pl.LazyFrame,
    customer_features: pl.LazyFrame,
    article_features: pl.LazyFrame,
    transactions: pl.LazyFrame,
    articles: pl.DataFrame,
    customers: pl.DataFrame,
    **embeddings: pl.LazyFrame,
) -> pl.DataFrame:
    """The rankers' top k for one shard of the prediction week's customers (customer_id modulo
    the shard count): by default only the ranker validation prefers (the one the final
    recommendations use), `prediction_rankers` to choose; the models trained by `ranker_models` for
    the prediction week, restored from the model store; features built a chunk of customers at
    a time. Shards are independent steps, so a backfill over them spreads across workers."""
    week = str(CALENDAR.prediction_week)
    try:
        names = scoring_rankers(
            config.prediction_rankers, reports.reports_dir, CALENDAR.validation_weeks
        )
        scorers = restore_scorers(
            model_store.folder("ranker_lightgbm", week),
            model_store.folder("ranker_dlrm", week),
            names,
        )
    except (FileNotFoundError, ValueError) as exc:
        raise dg.Failure(f"{week}: {exc}") from exc
    inp = _inputs(
        week, transactions, articles, customers, customer_features, article_features, embeddings
    )
    top = score_shard(
        ranker_candidates, inp, scorers, context.partition_key, config.k, config.chunk_customers
    )
    context.add_output_metadata(
        {
            "customers": top["customer_id"].n_unique(),
            "week": week,
            "shards": N_SHARDS,
            "rankers": ", ".join(names),
        }
    )
    return top
