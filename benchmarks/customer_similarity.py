"""The customer-similarity source (`CustomerSimilarity.score`: user-kNN over sparse purchase
vectors) for a sample of a lake week's customers to score, picking each customer's neighbours
and its k best articles as before (every row of the similarity and score tables into the
per-customer top k) and as now (only the rows at or above each customer's k-th largest value,
`candidates.base.at_least_kth`), checked to give the same lists.

"Before" is the same code with that filter switched off. Writes
benchmarks/customer-similarity.md (or --output).

    python benchmarks/customer_similarity.py --data data/bench-full --week 2020-09-23
"""

from __future__ import annotations

import argparse
import platform
import time
from datetime import date
from pathlib import Path

import polars as pl
from comparison import write_comparison

from hm_pipeline.candidates import heuristics
from hm_pipeline.candidates.heuristics import CustomerSimilarity


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="a data folder with a lake/")
    ap.add_argument("--week", required=True, help="the week scored, e.g. 2020-09-23")
    ap.add_argument("--k", type=int, default=50, help="candidates per customer (prediction: 50)")
    ap.add_argument("--customers", type=int, default=20_000, help="customers in the sample")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument(
        "--output", type=Path, default=Path(__file__).with_name("customer-similarity.md")
    )
    args = ap.parse_args()
    lake, cutoff = args.data / "lake", date.fromisoformat(args.week)
    history = pl.scan_parquet(lake / "transactions.parquet").filter(pl.col("t_dat") < cutoff)
    customers = (
        pl.read_parquet(lake / "customers_to_score" / f"{args.week}.parquet")
        .select(pl.col("customer_id").cast(pl.Int32))
        .sample(args.customers, seed=0)
        .sort("customer_id")
    )
    src = CustomerSimilarity(k=args.k)
    kept = heuristics.at_least_kth
    every_row = lambda score, group, k: pl.lit(True)  # noqa: E731 - the filter switched off

    def run(pick) -> tuple[pl.DataFrame, float]:
        heuristics.at_least_kth = pick
        try:
            t = time.perf_counter()
            out = src.score(history, customers, cutoff, None)
            return out.sort("customer_id", "article_id"), time.perf_counter() - t
        finally:
            heuristics.at_least_kth = kept

    rows, same = [], True
    for rep in range(1, args.repeats + 1):
        before, t_before = run(every_row)
        now, t_now = run(kept)
        same &= now.equals(before)
        rows.append(f"| {rep} | {now.height:,} | {t_before:.1f} | {t_now:.1f} |")
        print(rows[-1], flush=True)
    write_comparison(
        args.output,
        "Customer similarity (user-kNN)",
        (
            f"Written by `python benchmarks/customer_similarity.py --data {args.data} "
            f"--week {args.week}` ({platform.machine()}): {args.customers:,} of the week's "
            f"customers to score (a fixed sample), purchases of the last {src.days} days, "
            f"{src.neighbours} neighbours, k = {args.k}, chunks of {src.chunk} customers on "
            f"two threads. Before and now give identical lists: {same}. The whole history "
            "is read and the purchase matrices built in both timings."
        ),
        ["repeat", "rows", "before s", "now s"],
        rows,
        same,
        "lists",
    )


if __name__ == "__main__":
    main()
