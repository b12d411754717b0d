"""Customer shards for the prediction week: each shard's customers are scored on their own
(features built chunk by chunk, both rankers restored from the model store), so shards can run
as separate steps on different workers and the final top 12 gathers them."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import polars as pl

from hm_pipeline.ranking.features import FeatureInputs, feature_chunks
from hm_pipeline.ranking.training import ranked

N_SHARDS = int(os.environ.get("HM_PREDICTION_SHARDS") or 4)


def shard_keys(n: int = N_SHARDS) -> list[str]:
    """Partition keys of the shards: `00-of-04` .. `03-of-04`."""
    return [f"{i:02d}-of-{n:02d}" for i in range(n)]


def parse_shard(key: str) -> tuple[int, int]:
    """(index, count) of a shard key."""
    try:
        i, n = (int(x) for x in key.split("-of-"))
    except ValueError as exc:
        raise ValueError(f"'{key}' is not a shard key like 00-of-04") from exc
    if not 0 <= i < n:
        raise ValueError(f"'{key}': shard {i} of {n} does not exist")
    return i, n


def in_shard(index: int, count: int) -> pl.Expr:
    """Rows whose customer falls in the shard (customer_id modulo the shard count)."""
    return (pl.col("customer_id").cast(pl.Int64) % count) == index


Scorer = Callable[[pl.DataFrame], np.ndarray]


def restore_scorers(
    lightgbm_folder: Path,
    dlrm_folder: Path,
    names: tuple[str, ...] | list[str] = ("ranker_lightgbm", "ranker_dlrm"),
) -> dict[str, Scorer]:
    """The rankers in `names` as saved by ranker_models (LightGBM's model.txt, compiled for
    this CPU; DLRM's state_dict and preprocessing), as scorers of a feature table; only those
    are loaded."""
    from hm_pipeline.ranking import dlrm, lgbm

    scorers: dict[str, Scorer] = {}
    if "ranker_lightgbm" in names:
        model_file = Path(lightgbm_folder) / "model.txt"
        if not model_file.exists():
            raise FileNotFoundError(
                f"no LightGBM ranker in {lightgbm_folder}: train the rankers first"
            )
        scorers["ranker_lightgbm"] = lgbm.CompiledRanker(model_file)
    if "ranker_dlrm" in names:
        model, prep = dlrm.load_dlrm(dlrm_folder)
        scorers["ranker_dlrm"] = lambda f: dlrm.predict(model, prep, f)
    return scorers


SCORED_SCHEMA = {
    "customer_id": pl.Int32,
    "article_id": pl.Int32,
    "score": pl.Float32,
    "rank": pl.Int32,
    "ranker": pl.String,
}


def score_frames(
    frames: Iterable[pl.DataFrame], scorers: dict[str, Scorer], k: int
) -> pl.DataFrame:
    """Every scorer's top k per customer of each feature frame (frames hold whole customers):
    customer_id, article_id, score, rank and ranker (the scorer's name)."""
    parts = [
        ranked(frame, scorer(frame), k).with_columns(pl.lit(name).alias("ranker"))
        for frame in frames
        for name, scorer in scorers.items()
    ]
    return pl.concat(parts) if parts else pl.DataFrame(schema=SCORED_SCHEMA)


def score_shard(
    union: pl.LazyFrame,
    inp: FeatureInputs,
    scorers: dict[str, Scorer],
    shard: str,
    k: int,
    chunk: int = 20_000,
) -> pl.DataFrame:
    """Every scorer's top k for the shard's customers (`score_frames` over the shard's feature
    table, built a chunk of customers at a time)."""
    index, count = parse_shard(shard)
    frames = feature_chunks(union.filter(in_shard(index, count)), inp, chunk)
    return score_frames(frames, scorers, k)
