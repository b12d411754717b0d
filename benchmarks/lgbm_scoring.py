"""LightGBM scoring: the booster's own `predict` against the same model compiled to machine code
(`lgbm.CompiledRanker`, lleaves), on a materialized world's saved ranker and real feature rows.

Loads models/ranker_lightgbm/<model week>/model.txt and the first `--rows` rows of
lake/ranker_features/<features week>.parquet, times compiling the model once and scoring the
rows twice with each, and compares the scores (largest difference, and how many customers' top
12 differ as `training.ranked` cuts it). Writes benchmarks/lgbm-scoring.md.

    python benchmarks/lgbm_scoring.py --data data/bench-full
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import lightgbm
import numpy as np
import polars as pl

from hm_pipeline.ranking import lgbm, training


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path("data/bench-full"))
    ap.add_argument("--model-week", default="2020-09-23")
    ap.add_argument("--features-week", default="2020-09-16")
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--output", type=Path, default=Path(__file__).with_name("lgbm-scoring.md"))
    args = ap.parse_args()
    model_file = args.data / "models" / "ranker_lightgbm" / args.model_week / "model.txt"
    frame = (
        pl.scan_parquet(args.data / "lake" / "ranker_features" / f"{args.features_week}.parquet")
        .head(args.rows)
        .collect()
    )
    booster = lightgbm.Booster(model_file=str(model_file))
    t = time.perf_counter()
    compiled = lgbm.CompiledRanker(model_file)
    compile_s = time.perf_counter() - t
    rows, scores = [], {}
    for rep in (1, 2):
        for name, score in (
            ("LightGBM Booster.predict", lambda f: lgbm.predict(booster, f)),
            ("compiled (lleaves)", compiled),
        ):
            t = time.perf_counter()
            scores[name] = score(frame)
            rows.append(f"| {rep} | {name} | {time.perf_counter() - t:.1f} |")
    a, b = scores["LightGBM Booster.predict"], scores["compiled (lleaves)"]
    diff = float(np.abs(a - b).max())
    top_a, top_b = (training.ranked(frame, s, 12) for s in (a, b))
    differ = (
        top_a.join(top_b, on=["customer_id", "rank"], how="full", suffix="_b")
        .filter(pl.col("article_id").ne_missing(pl.col("article_id_b")))
        .select(pl.coalesce("customer_id", "customer_id_b").n_unique())
        .item()
    )
    out = args.output
    out.write_text(
        "\n".join(
            [
                "# LightGBM scoring: the booster against the compiled model",
                "",
                f"Written by `python benchmarks/lgbm_scoring.py --data {args.data}` "
                f"({platform.machine()}, {os.cpu_count()} cores; the compiled model on "
                f"{lgbm.LGBMConfig.num_threads} threads, LightGBM on its default): the "
                f"model of {args.model_week} ({booster.num_trees()} trees, "
                f"{len(booster.feature_name())} features) on the first {frame.height:,} rows of "
                f"the {args.features_week} feature table "
                f"({frame['customer_id'].n_unique():,} customers). Compiling the model took "
                f"{compile_s:.1f} s. Largest difference between the two scorings: {diff:.1e}; "
                f"customers whose top 12 differs: {differ}.",
                "",
                "| repeat | scorer | wall s (table to scores) |",
                "|---|---|---|",
                *rows,
                "",
            ]
        )
    )
    print(out.read_text())


if __name__ == "__main__":
    main()
