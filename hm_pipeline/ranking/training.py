"""The rankers' training sets (the feature tables of the weeks before W, labelled with those
weeks' purchases; customers without a positive candidate dropped; at most `max_negatives`
negatives per customer, seeded) and their training (`train_rankers`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from hm_pipeline.ranking.features import KEYS, sorted_by_keys


def label(features: pl.DataFrame | pl.LazyFrame, labels: pl.DataFrame):
    """features with label = 1 where the customer bought the article in the week."""
    bought = labels.select(KEYS).unique().with_columns(pl.lit(1, pl.Int8).alias("label"))
    if isinstance(features, pl.LazyFrame):
        bought = bought.lazy()
    return features.join(bought, on=KEYS, how="left").with_columns(pl.col("label").fill_null(0))


def sample_training(labelled: pl.DataFrame | pl.LazyFrame, max_negatives: int, seed: int = 0):
    """Customers with at least one positive, all their positives and at most `max_negatives`
    negatives each (drawn by a seeded hash, so the same seed gives the same rows)."""
    with_pos = labelled.filter(pl.col("label").max().over("customer_id") == 1)
    keyed = with_pos.with_columns(pl.struct(KEYS).hash(seed).alias("_h")).with_columns(
        pl.col("_h").rank("ordinal").over("customer_id", "label").alias("_r")
    )
    return (
        keyed.filter((pl.col("label") == 1) | (pl.col("_r") <= max_negatives))
        .drop("_h", "_r")
        .sort(KEYS)
    )


def training_rows(
    features: pl.DataFrame | pl.LazyFrame, labels: pl.DataFrame, max_negatives: int, seed: int = 0
) -> pl.DataFrame:
    """`sample_training(label(features, labels))`, choosing the rows on the keys alone and then
    reading only those rows' features (a full-scale week's feature table does not fit in
    memory beside the models; the sample is about a seventh of it)."""
    lazy = features.lazy()
    chosen = sample_training(label(lazy.select(KEYS), labels), max_negatives, seed)
    return lazy.join(chosen, on=KEYS, how="inner").sort(KEYS).collect(engine="streaming")


def assemble(
    features: dict[str, pl.DataFrame | pl.LazyFrame],
    labels: dict[str, pl.DataFrame],
    week: str,
    n_weeks: int,
    max_negatives: int,
    seed: int = 0,
) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """(train, valid) from the training weeks before `week` (the most recent one is the
    validation week for early stopping when there are two or more). Each row keeps its week
    in column `week`; groups are (week, customer)."""
    earlier = sorted(w for w in features if w < week and w in labels)[-n_weeks:]
    sets = {
        w: training_rows(features[w], labels[w], max_negatives, seed).with_columns(
            pl.lit(w).alias("week")
        )
        for w in earlier
    }
    if not sets:
        return pl.DataFrame(), None
    if len(earlier) == 1:
        return sets[earlier[0]], None
    train = pl.concat([sets[w] for w in earlier[:-1]], how="diagonal_relaxed")
    return train, sets[earlier[-1]]


def customer_chunks(features: pl.LazyFrame, size: int):
    """The feature table in frames of about `size` customers each (consecutive id ranges)."""
    ids = features.select("customer_id").unique().sort("customer_id").collect()["customer_id"]
    for s in range(0, len(ids), size):
        part = ids[s : s + size]
        frame = features.filter(pl.col("customer_id").is_between(part[0], part[-1])).collect(
            engine="streaming"
        )
        yield sorted_by_keys(frame)


def group_sizes(frame: pl.DataFrame) -> np.ndarray:
    """Rows per (week, customer) group, in the frame's order (which must be sorted by it)."""
    return (
        frame.select("week", "customer_id")
        .with_columns(pl.struct("week", "customer_id").rle_id().alias("_g"))
        .group_by("_g", maintain_order=True)
        .len()["len"]
        .to_numpy()
    )


def ranked(frame: pl.DataFrame, scores: np.ndarray, k: int) -> pl.DataFrame:
    """customer_id, article_id, score, rank: the top k of each customer by score."""
    return (
        frame.select(KEYS)
        .with_columns(pl.Series("score", scores.astype(np.float32)).round(6))
        .sort(["customer_id", "score", "article_id"], descending=[False, True, False])
        .with_columns(
            pl.int_range(1, pl.len() + 1, dtype=pl.Int32).over("customer_id").alias("rank")
        )
        .filter(pl.col("rank") <= k)
        .with_columns(pl.col("customer_id", "article_id").cast(pl.Int32))
    )


@dataclass
class TrainedRankers:
    """Both rankers as `train_rankers` leaves them: LightGBM's booster and DLRM's model with
    its preprocessing and settings, what each training recorded, and the training rows."""

    booster: Any
    lightgbm_info: dict
    dlrm_model: Any
    dlrm_prep: Any
    dlrm_config: Any
    dlrm_info: dict
    train_rows: int

    def save(self, lightgbm_folder: Path, dlrm_folder: Path) -> None:
        """LightGBM's model.txt and info.json; DLRM's state_dict, config and preprocessing:
        what shards.restore_scorers reads."""
        from hm_pipeline.ranking import dlrm

        folder = Path(lightgbm_folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(folder / "model.txt"))
        (folder / "info.json").write_text(json.dumps(self.lightgbm_info, indent=1))
        dlrm.save_dlrm(
            Path(dlrm_folder), self.dlrm_model, self.dlrm_prep, self.dlrm_config, self.dlrm_info
        )


def train_rankers(
    features: dict[str, pl.DataFrame | pl.LazyFrame],
    labels: dict[str, pl.DataFrame],
    week: str,
    n_weeks: int,
    max_negatives: int,
    seed: int = 0,
) -> TrainedRankers:
    """LightGBM lambdarank (early stopping on the latest training week, refit on all) and DLRM
    (best epoch by the latest week's MAP@12) learned from the feature tables of the weeks
    before `week` labelled with those weeks' purchases. Labels of `week` or later are refused,
    as is a training week without labels (ValueError naming the weeks)."""
    from hm_pipeline.ranking import dlrm, lgbm  # torch and LightGBM: imported when training

    late = sorted(w for w in labels if w >= week)
    if late:
        raise ValueError(f"the rankers for {week} may not read labels of {late}")
    earlier = {w: f for w, f in features.items() if w < week}
    missing = sorted(w for w in earlier if w not in labels)
    if missing:  # before any feature table is read
        raise ValueError(f"no training data for {week}: weeks without labels {missing}")
    train, valid = assemble(earlier, labels, week, n_weeks, max_negatives, seed)
    if train.height == 0:
        raise ValueError(f"no training data for {week}: no earlier week with labels")
    booster, lgb_info = lgbm.train_lgbm(train, valid, lgbm.LGBMConfig(seed=seed))
    dcfg = dlrm.DLRMConfig(seed=seed)
    model, prep, dlrm_info = dlrm.train_dlrm(train, valid, dcfg)
    return TrainedRankers(booster, lgb_info, model, prep, dcfg, dlrm_info, train.height)
