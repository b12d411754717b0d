"""The candidate union (`ranking.union.candidate_union`) of ranges of customer ids, built from a
lake's candidate files, by the aggregation of before (a filter per source and column, then
`first`, as up to 2026-12-03) and by the current one (each source's score and rank spread into
its own columns, then max / min), checked to give the same table.

Both read the sources' rows of the range into memory first, so the figures are the union's own
work (the asset reads them lazily from the same files).

Writes benchmarks/union-chunks.md (or --output).

    python benchmarks/union_chunks.py --data data/bench-full --week 2020-09-23
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import polars as pl
from comparison import write_comparison

from hm_pipeline.ranking.union import best_first, candidate_union


def filter_first_union(
    sources: dict[str, pl.DataFrame], per_source: int, max_per_customer: int | None
) -> pl.LazyFrame:
    """The union as it was built before: one long table, each source's score and rank picked
    per pair by a filter on the source and `first`."""
    names = sorted(sources)
    long = pl.concat(
        [
            sources[n]
            .lazy()
            .filter(pl.col("rank") <= per_source)
            .select(
                "customer_id",
                "article_id",
                pl.lit(i, pl.Int8).alias("_src"),
                pl.col("score").cast(pl.Float32),
                pl.col("rank").cast(pl.Int16),
            )
            for i, n in enumerate(names)
        ]
    )
    aggs = []
    for i, n in enumerate(names):
        hit = pl.col("_src") == i
        aggs += [
            pl.col("score").filter(hit).first().alias(f"{n}_score"),
            pl.col("rank").filter(hit).first().alias(f"{n}_rank"),
        ]
    union = long.group_by("customer_id", "article_id").agg(
        *aggs, pl.len().cast(pl.Int16).alias("n_sources"), pl.col("rank").min().alias("best_rank")
    )
    if max_per_customer is not None:
        union = best_first(union).filter(
            pl.int_range(pl.len()).over("customer_id") < max_per_customer
        )
    return union.sort("customer_id", "article_id")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="a data folder with a lake/")
    ap.add_argument("--week", required=True, help="the union's week, e.g. 2020-09-23")
    ap.add_argument("--width", type=int, default=50_000, help="customer ids per range")
    ap.add_argument("--ranges", type=int, default=3, help="how many ranges to time")
    ap.add_argument("--per-source", type=int, default=40)
    ap.add_argument("--max-per-customer", type=int, default=100, help="0: no cut")
    ap.add_argument("--output", type=Path, default=Path(__file__).with_name("union-chunks.md"))
    args = ap.parse_args()
    cut = args.max_per_customer or None

    files = sorted((args.data / "lake").glob(f"candidates_*/{args.week}.parquet"))
    if not files:
        raise SystemExit(f"no candidate files for {args.week} under {args.data / 'lake'}")
    scans = {f.parent.name.removeprefix("candidates_"): pl.scan_parquet(f) for f in files}
    lo = min(s.select(pl.col("customer_id").min()).collect().item() for s in scans.values())
    rows, same = [], True
    for r in range(args.ranges):
        a = lo + r * args.width
        in_range = pl.col("customer_id").is_between(a, a + args.width - 1)
        mats = {n: s.filter(in_range).collect() for n, s in scans.items()}
        long_rows = sum(m.height for m in mats.values())
        t = time.perf_counter()
        before = filter_first_union(mats, args.per_source, cut).collect()
        t_before = time.perf_counter() - t
        t = time.perf_counter()
        now = candidate_union(mats, args.per_source, cut).collect()
        t_now = time.perf_counter() - t
        same &= now.equals(before)
        rows.append(
            f"| [{a:,}, {a + args.width:,}) | {long_rows:,} | {now.height:,} | "
            f"{t_before:.1f} | {t_now:.1f} |"
        )
        print(rows[-1], flush=True)
    write_comparison(
        args.output,
        "The candidate union, one range of customer ids at a time",
        (
            f"Written by `python benchmarks/union_chunks.py --data {args.data} --week "
            f"{args.week}` ({platform.machine()}): {len(files)} sources, each one's top "
            f"{args.per_source}, at most {cut} rows per customer, ranges of "
            f"{args.width:,} customer ids. The two ways give identical tables: {same}."
        ),
        ["customer ids", "source rows", "union rows", "filter + first s", "max / min s"],
        rows,
        same,
        "two unions",
    )


if __name__ == "__main__":
    main()
