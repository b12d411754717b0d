"""What the learned sources lose when a model serves weeks after the one it was trained for
(`retrain_every_weeks` > 1), on a materialized world.

For each chosen validation week W and learned source, the model is trained for W - age weeks
(on the history before that week) and serves W exactly as the candidate asset does (restored,
its inputs read at W); age 0 is the per-week default. It writes MAP@12 and recall@50 on W's
buyers, and the seconds spent training, to benchmarks/retrain-every.md.

    python benchmarks/retrain_every.py --data data
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import polars as pl

from hm_pipeline.candidates import SourceContext
from hm_pipeline.candidates.learned import LEARNED_SOURCES, source_for_week
from hm_pipeline.metrics import map_at_k
from hm_pipeline.splits import labels as week_labels
from hm_pipeline.weeks import Calendar


def recall(candidates: pl.DataFrame, truth: pl.DataFrame) -> float:
    bought = truth.select("customer_id", "article_id").unique()
    found = bought.join(candidates, on=["customer_id", "article_id"], how="semi").height
    return found / max(bought.height, 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path("data"))
    ap.add_argument("--weeks", type=int, default=2, help="the last N validation weeks")
    ap.add_argument("--ages", default="0,1,3", help="weeks between training and serving")
    ap.add_argument("--output", type=Path, default=Path("benchmarks/retrain-every.md"))
    args = ap.parse_args()
    lake = args.data / "lake"
    tx = pl.scan_parquet(lake / "transactions.parquet")
    last_day = tx.select(pl.col("t_dat").max()).collect().item()
    weeks = Calendar(last_day=last_day).validation_weeks[-args.weeks :]
    ctx = SourceContext(
        pl.read_parquet(lake / "articles.parquet"), pl.read_parquet(lake / "customers.parquet")
    )
    ages = [int(a) for a in args.ages.split(",")]
    rows = []
    for week in weeks:
        truth = week_labels(tx, week).collect()
        buyers = truth["customer_id"].unique().sort()
        for cls in LEARNED_SOURCES:
            for age in ages:
                trained = week - timedelta(weeks=age)
                with tempfile.TemporaryDirectory() as tmp:
                    t0 = time.monotonic()
                    src, _, _ = source_for_week(cls, 50, week, trained, Path(tmp), tx, ctx)
                    out = src.generate(tx, buyers, week, ctx)
                    seconds = time.monotonic() - t0
                row = {
                    "week": str(week),
                    "source": cls.name,
                    "trained for": str(trained),
                    "age (weeks)": age,
                    "map_at_12": round(map_at_k(out.filter(pl.col("rank") <= 12), truth, 12), 4),
                    "recall_at_50": round(recall(out, truth), 4),
                    "train + serve s": round(seconds, 1),
                }
                rows.append(row)
                print(row, flush=True)
    frame = pl.DataFrame(rows)
    mean = (
        frame.group_by("source", "age (weeks)")
        .agg(pl.col("map_at_12").mean().round(4), pl.col("recall_at_50").mean().round(4))
        .sort("source", "age (weeks)")
    )

    def table(f: pl.DataFrame) -> list[str]:
        return [
            "| " + " | ".join(f.columns) + " |",
            "|" + "---|" * len(f.columns),
            *["| " + " | ".join(str(v) for v in r) + " |" for r in f.iter_rows()],
        ]

    lines = [
        "# Learned sources served by an older model",
        "",
        f"Written by `python benchmarks/retrain_every.py --data {args.data} --weeks {args.weeks} "
        f"--ages {args.ages}` on the world in `{args.data}`. Each model is trained for the week "
        "`age` weeks before W and ranks W's buyers with its inputs read at W (what "
        "`retrain_every_weeks` does); MAP@12 and recall@50 on W's purchases.",
        "",
        "Mean over the weeks:",
        "",
        *table(mean),
        "",
        "Per week:",
        "",
        *table(frame),
    ]
    args.output.write_text("\n".join(lines) + "\n")
    print(f"-> {args.output}")


if __name__ == "__main__":
    main()
