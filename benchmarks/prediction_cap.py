"""What cutting a week's candidate union at N per customer costs the rankers, on a materialized
validation week (the prediction week is cut so that every customer can be scored in time:
`UnionConfig.prediction_max_per_customer`).

The union is ordered as the cut orders it (best rank in any source, then found by more
sources, then article id); each ranker's stored top 50 for the week keeps only candidates within
the first N, renumbered. Rankers score each row on its own, so this is the ranking they give
the cut union, exactly for every customer who keeps 12 of their top 50 (the `short` column
counts the others). Writes MAP@12, the union's recall and its rows to
benchmarks/prediction-cap.md.

    python benchmarks/prediction_cap.py --lake data/bench-full/lake --week 2020-09-16
"""

from __future__ import annotations

import argparse
from pathlib import Path

import polars as pl

from hm_pipeline.evaluation import markdown_table
from hm_pipeline.metrics import map_at_k
from hm_pipeline.ranking.union import best_first

KEYS = ["customer_id", "article_id"]


def cut_order(union: pl.DataFrame) -> pl.DataFrame:
    """customer_id, article_id, pos: each candidate's place in the order of the cut."""
    return best_first(union).select(
        *KEYS, pl.int_range(1, pl.len() + 1).over("customer_id").alias("pos")
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lake", type=Path, default=Path("data/bench-full/lake"))
    ap.add_argument("--week", default="2020-09-16")
    ap.add_argument("--caps", default="40,60,80,100,120,150")
    ap.add_argument("--output", type=Path, default=Path("benchmarks/prediction-cap.md"))
    args = ap.parse_args()
    lake, week = args.lake, args.week
    labels = pl.read_parquet(lake / "labels" / f"{week}.parquet").select(KEYS)
    bought = labels.unique()
    union = pl.scan_parquet(lake / "ranker_candidates" / f"{week}.parquet")
    order = cut_order(union.select(*KEYS, "best_rank", "n_sources").collect())
    n_customers = order["customer_id"].n_unique()
    caps = [int(c) for c in args.caps.split(",")]
    rows = []
    for cap in [*caps, None]:
        kept = order if cap is None else order.filter(pl.col("pos") <= cap)
        row = {
            "cut": "none" if cap is None else str(cap),
            "rows": kept.height,
            "rows_share": kept.height / max(order.height, 1),
            "rows_per_customer": kept.height / max(n_customers, 1),
            "union_recall": bought.join(kept, on=KEYS, how="semi").height / max(bought.height, 1),
        }
        for name in ("ranker_lightgbm", "ranker_dlrm"):
            top = (
                pl.read_parquet(lake / name / f"{week}.parquet")
                .join(kept, on=KEYS, how="semi")
                .sort("customer_id", "rank")
                .with_columns(pl.int_range(1, pl.len() + 1).over("customer_id").alias("rank"))
            )
            row[f"{name}_map_at_12"] = map_at_k(top.filter(pl.col("rank") <= 12), labels, 12)
            row[f"{name}_short"] = (
                top.group_by("customer_id").len().filter(pl.col("len") < 12).height
            )
        rows.append(row)
    table = pl.DataFrame(rows)
    text = (
        f"# Cutting the candidate union at N per customer ({lake}, week {week})\n\n"
        f"Written by `python benchmarks/prediction_cap.py --lake {lake} --week {week}`. "
        f"{n_customers:,} customers (the week's buyers), {bought.height:,} distinct purchases. "
        "Each ranker's stored top 50 restricted to the first N candidates of the cut's order "
        "(best rank in any source first); `short`: customers left with fewer than 12 of their "
        "top 50, for whom the figure is a lower bound.\n\n" + markdown_table(table) + "\n"
    )
    args.output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
