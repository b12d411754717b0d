"""What LightGBM's refit costs and buys, on a materialized world's validation weeks.

The `rankers` asset trains LightGBM on the feature tables of the two weeks before W: early
stopping on W-1 with the rows of W-2, then a refit on both weeks with the best number of
rounds. The refit is the larger part of the step at full scale (py-spy, benchmarks/e2e-full.md).
For each validation week W with two labelled weeks before it, this trains:

- the default: early stopping on W-1, refit on W-2 and W-1;
- no refit: the early-stopped model, which learnt from W-2 alone;
- the latest week (`LGBMConfig.learn_from_latest`): learns from W-1, early stopping on W-2,
  no refit;

scores W's feature table with each (the compiled model, chunks of customers) and writes MAP@12
on W's buyers and the training seconds to benchmarks/lgbm-refit.md.

    python benchmarks/lgbm_refit.py --data data/bench-full    # after `hm-pipeline bench e2e`
    HM_DATA_DIR=data/small hm-pipeline synth --scale small --seed 42
    HM_DATA_DIR=data/small hm-pipeline run --week all
    python benchmarks/lgbm_refit.py --data data/small --output benchmarks/lgbm-refit-small.md
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import time
from pathlib import Path

import polars as pl

from hm_pipeline.evaluation import markdown_table
from hm_pipeline.metrics import map_at_k
from hm_pipeline.ranking import lgbm, training

VARIANTS = ("no refit", "learns from W-1", "early stop on W-1, refit on both (default)")


def train(variant: str, older: pl.DataFrame, latest: pl.DataFrame):
    cfg = lgbm.LGBMConfig()
    if variant == "no refit":
        return lgbm.train_lgbm(older, latest, dataclasses.replace(cfg, refit_on_all_weeks=False))
    if variant == "learns from W-1":
        return lgbm.train_lgbm(older, latest, dataclasses.replace(cfg, learn_from_latest=True))
    return lgbm.train_lgbm(older, latest, cfg)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path("data/bench-full"))
    ap.add_argument("--output", type=Path, default=Path(__file__).with_name("lgbm-refit.md"))
    ap.add_argument("--chunk-customers", type=int, default=20_000)
    args = ap.parse_args()
    lake, reports = args.data / "lake", args.data / "reports"
    feats = {p.stem: p for p in (lake / "ranker_features").glob("*.parquet")}
    labels = {p.stem: pl.read_parquet(p) for p in (lake / "labels").glob("*.parquet")}
    evaluated = (p.stem.removeprefix("evaluation_") for p in reports.glob("evaluation_2*.csv"))
    # each evaluated week with labels, features and two labelled weeks before it
    plan = {w: sorted(e for e in feats if e < w and e in labels)[-2:] for w in evaluated}
    rows = []
    for week, earlier in sorted(plan.items()):
        if week not in labels or week not in feats or len(earlier) < 2:
            continue
        older, latest = training.assemble(
            {w: pl.scan_parquet(feats[w]) for w in earlier}, labels, week, 2, 30, 0
        )
        truth = labels[week].select("customer_id", "article_id")
        row = {"week": week, "buyers": truth["customer_id"].n_unique()}
        for variant in VARIANTS:
            t = time.perf_counter()
            booster, info = train(variant, older, latest)
            row[f"{variant}: train s"] = f"{time.perf_counter() - t:.1f}"
            row[f"{variant}: rounds"] = info["best_iteration"]
            compiled = lgbm.CompiledRanker.of(booster)
            now = pl.scan_parquet(feats[week])
            top = pl.concat(
                training.ranked(frame, compiled(frame), 12)
                for frame in training.customer_chunks(now, args.chunk_customers)
            )
            row[f"{variant}: MAP@12"] = map_at_k(top, truth, 12)
            print(week, variant, row, flush=True)
        rows.append(row)
    lines = [
        "# LightGBM: the refit on both training weeks",
        "",
        f"Written by `python benchmarks/lgbm_refit.py --data {args.data}` "
        f"({platform.machine()}, {lgbm.LGBMConfig.num_threads} LightGBM threads): MAP@12 on each "
        "validation week's buyers and the seconds spent training (datasets and boosting; "
        "early stopping's rounds as `rounds`) under each way of using the two training weeks.",
        "",
        markdown_table(pl.DataFrame(rows)),
        "",
    ]
    args.output.write_text("\n".join(lines) + "\n")
    print(args.output.read_text())


if __name__ == "__main__":
    main()
