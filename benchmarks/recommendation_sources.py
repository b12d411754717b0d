"""`recommend.with_sources` on a lake's final recommendations: each recommended article
labelled with the sources of the prediction week's candidate union that found it, as it was
before (a list of "name:rank" strings per row, nulls dropped, joined) and as it is now (one
`concat_str` skipping nulls), checked to give the same table.

Writes benchmarks/recommendation-sources.md (or --output).

    python benchmarks/recommendation_sources.py --data data/bench-full --week 2020-09-23
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import polars as pl
from comparison import write_comparison

from hm_pipeline.ranking.union import source_names
from hm_pipeline.recommend import with_sources


def with_sources_before(top: pl.DataFrame, union: pl.LazyFrame) -> pl.DataFrame:
    """`with_sources` as it was."""
    names = source_names(union)
    found = (
        union.select("customer_id", "article_id", *[f"{n}_rank" for n in names])
        .join(
            top.lazy().select("customer_id", "article_id"),
            on=["customer_id", "article_id"],
            how="semi",
        )
        .collect(engine="streaming")
    )
    parts = [
        pl.when(pl.col(f"{n}_rank").is_not_null()).then(pl.format(f"{n}:{{}}", pl.col(f"{n}_rank")))
        for n in names
    ]
    labelled = found.select(
        "customer_id",
        "article_id",
        pl.concat_list(parts).list.drop_nulls().list.join(", ").alias("sources"),
    )
    return top.join(labelled, on=["customer_id", "article_id"], how="left").with_columns(
        pl.col("sources").fill_null("")
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="a data folder with a lake/")
    ap.add_argument("--week", required=True, help="the prediction week, e.g. 2020-09-23")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument(
        "--output", type=Path, default=Path(__file__).with_name("recommendation-sources.md")
    )
    args = ap.parse_args()
    lake = args.data / "lake"
    top = pl.read_parquet(lake / "recommendations.parquet").select(
        "customer_id", "rank", "article_id", "score", "origin"
    )
    union = pl.scan_parquet(lake / "ranker_candidates" / f"{args.week}.parquet")
    rows, same = [], True
    for r in range(args.repeats):
        t = time.perf_counter()
        before = with_sources_before(top, union)
        t_before = time.perf_counter() - t
        t = time.perf_counter()
        now = with_sources(top, union)
        t_now = time.perf_counter() - t
        same &= now.equals(before)
        rows.append(f"| {r + 1} | {t_before:.1f} | {t_now:.1f} |")
        print(rows[-1], flush=True)
        del before
    labelled = int((now["sources"] != "").sum())
    write_comparison(
        args.output,
        "Recommendations: naming each article's sources",
        (
            f"Written by `python benchmarks/recommendation_sources.py --data {args.data} "
            f"--week {args.week}` ({platform.machine()}): {top.height:,} recommendations "
            f"({labelled:,} found by at least one source) against the week's candidate "
            f"union of {len(source_names(union))} sources, read lazily each time. Before "
            f"and now give identical tables: {same}."
        ),
        ["repeat", "before s", "now s"],
        rows,
        same,
        "tables",
    )


if __name__ == "__main__":
    main()
