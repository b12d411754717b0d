"""What restricting the two-tower's retrieval to recently sold articles costs, on a materialized
validation week: the week's model (from the model store) ranks the week's buyers over the whole
catalogue and over the articles sold in the last N days before the week, and each list is
scored against the week's purchases (recall of the top 50, what the prediction week keeps, and
of the top 200; MAP@12). Retrieval time is measured for the same buyers. Writes
benchmarks/twotower-pool.md.

    python benchmarks/twotower_pool.py --data data/bench-full --week 2020-09-16
"""

from __future__ import annotations

import argparse
import time
from datetime import date
from pathlib import Path

import polars as pl

from hm_pipeline.candidates.base import SourceContext
from hm_pipeline.candidates.learned import TwoTowerSource
from hm_pipeline.evaluation import markdown_table
from hm_pipeline.metrics import map_at_k

KEYS = ["customer_id", "article_id"]


def recall(ranked: pl.DataFrame, bought: pl.DataFrame, n: int) -> float:
    """The share of the week's distinct purchases among the buyers' top n."""
    top = ranked.filter(pl.col("rank") <= n)
    return bought.join(top, on=KEYS, how="semi").height / max(bought.height, 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path("data/bench-full"))
    ap.add_argument("--week", default="2020-09-16")
    ap.add_argument("--pools", default="none,7,14,28")
    ap.add_argument("--output", type=Path, default=Path("benchmarks/twotower-pool.md"))
    args = ap.parse_args()
    lake, week = args.data / "lake", date.fromisoformat(args.week)
    history = pl.scan_parquet(lake / "transactions.parquet")
    ctx = SourceContext(
        articles=pl.read_parquet(lake / "articles.parquet"),
        customers=pl.read_parquet(lake / "customers.parquet"),
    )
    labels = pl.read_parquet(lake / "labels" / f"{week}.parquet").select(KEYS)
    bought = labels.unique()
    buyers = bought["customer_id"].unique().sort()
    folder = args.data / "models" / "twotower" / str(week)
    rows = []
    for pool in args.pools.split(","):
        src = TwoTowerSource.restore(folder, history, week, ctx)
        src.k, src.pool_days = 200, None if pool == "none" else int(pool)
        start = time.perf_counter()
        ranked = src.generate(history, buyers, week, ctx)
        seconds = time.perf_counter() - start
        rows.append(
            {
                "pool_days": pool,
                "pool_articles": len(src.pool(history.filter(pl.col("t_dat") < week), week)),
                "recall_at_50": recall(ranked, bought, 50),
                "recall_at_200": recall(ranked, bought, 200),
                "map_at_12": map_at_k(ranked.filter(pl.col("rank") <= 12), labels, 12),
                "seconds": seconds,
            }
        )
        print(rows[-1], flush=True)
    text = (
        f"# Two-tower retrieval over recently sold articles ({lake}, week {week})\n\n"
        f"Written by `python benchmarks/twotower_pool.py --data {args.data} --week {week}`. "
        f"The week's model ranks its {buyers.len():,} buyers ({bought.height:,} distinct "
        "purchases) over the articles sold in the last `pool_days` before the week ('none': "
        "the whole catalogue); `seconds`: generating their top 200 (customer vectors, "
        "retrieval, the candidate contract).\n\n" + markdown_table(pl.DataFrame(rows)) + "\n"
    )
    args.output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
