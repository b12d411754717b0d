"""The feature table of a labelled week (`ranking.features.feature_chunks`), chunk by chunk of
customers, built as before (every table left-joined onto the chunk's rows, then the rows sorted
by customer and article, as up to 2026-12-03) and as now (each customer- or article-level table
looked up by position for the chunk's distinct customers and articles, the rows kept in the
union's order), checked to give the same frames.

Both read the same lake files; the first chunk of each includes what is built once for the
week (the extra history aggregates, the recent purchases, the sorted lookup tables).

Writes benchmarks/feature-chunks.md (or --output).

    python benchmarks/feature_chunks.py --data data/bench-full --week 2020-09-16
"""

from __future__ import annotations

import argparse
import platform
import time
from datetime import date
from pathlib import Path

import polars as pl
from comparison import write_comparison

from hm_pipeline.ranking.features import (
    CROSS_FEATURES,
    KEYS,
    FeatureInputs,
    _article_extra,
    _customer_extra,
    feature_chunks,
    week_tables,
    with_similarities,
)


def _pair_features_before(hist, articles: pl.DataFrame, cutoff: date, union: pl.LazyFrame):
    days = (pl.lit(cutoff) - pl.col("t_dat").max()).dt.total_days()
    keyed = hist.join(
        articles.lazy().select("article_id", "product_code", "product_type_no"), on="article_id"
    )
    out = union.select(KEYS).join(
        articles.lazy().select("article_id", "product_code", "product_type_no"),
        on="article_id",
        how="left",
    )
    for level, name in [
        ("article_id", "article"),
        ("product_code", "code"),
        ("product_type_no", "type"),
    ]:
        agg = keyed.group_by("customer_id", level).agg(
            pl.len().cast(pl.Int32).alias(f"ca_{name}_count"),
            days.cast(pl.Int32).alias(f"ca_{name}_days_since"),
        )
        out = out.join(agg, on=["customer_id", level], how="left")
    return out.drop("product_code", "product_type_no")


def feature_chunks_before(union: pl.LazyFrame, inp: FeatureInputs, chunk: int = 20_000):
    """The chunks as they were built before: one lazy query of joins and a sort per chunk."""
    cutoff = inp.cutoff
    hist, art_static, cust_static, cfeat, afeat, recent = week_tables(inp)
    cextra = _customer_extra(hist, cutoff).collect()
    aextra = _article_extra(hist, cutoff).collect()
    recent = recent.collect()
    customers = union.select("customer_id").unique().sort("customer_id").collect()["customer_id"]
    for s in range(0, len(customers), chunk):
        ids = customers[s : s + chunk]
        u = union.filter(pl.col("customer_id").is_in(ids.implode()))
        frame = (
            u.join(
                _pair_features_before(
                    hist.filter(pl.col("customer_id").is_in(ids.implode())),
                    inp.articles,
                    cutoff,
                    u,
                ),
                on=KEYS,
                how="left",
            )
            .join(cfeat, on="customer_id", how="left")
            .join(afeat, on="article_id", how="left")
            .join(cextra.lazy(), on="customer_id", how="left")
            .join(aextra.lazy(), on="article_id", how="left")
            .join(cust_static.lazy(), on="customer_id", how="left")
            .join(art_static.lazy(), on="article_id", how="left")
            .with_columns(CROSS_FEATURES)
            .sort(KEYS)
            .collect()
        )
        yield with_similarities(frame, recent, inp.embeddings)


def lake_inputs(lake: Path, week: str) -> FeatureInputs:
    """What the ranker_features asset reads for `week`, from the lake's files."""
    emb = {
        name: pl.read_parquet(lake / f"{name}.parquet")
        for name in ("text_embeddings", "image_embeddings", "metadata_embeddings")
    }
    emb["copurchase_embeddings"] = pl.read_parquet(
        lake / "copurchase_embeddings" / f"{week}.parquet"
    )
    return FeatureInputs(
        cutoff=date.fromisoformat(week),
        history=pl.scan_parquet(lake / "transactions.parquet"),
        articles=pl.read_parquet(lake / "articles.parquet"),
        customers=pl.read_parquet(lake / "customers.parquet"),
        customer_features=pl.scan_parquet(lake / "customer_features" / f"{week}.parquet"),
        article_features=pl.scan_parquet(lake / "article_features" / f"{week}.parquet"),
        embeddings=emb,
    )


def timed(chunks):
    """(frame, seconds) for each chunk a generator yields."""
    while True:
        t = time.perf_counter()
        frame = next(chunks, None)
        if frame is None:
            return
        yield frame, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="a data folder with a lake/")
    ap.add_argument("--week", required=True, help="a labelled week, e.g. 2020-09-16")
    ap.add_argument("--chunks", type=int, default=3, help="how many chunks to time")
    ap.add_argument("--chunk", type=int, default=20_000, help="customers per chunk")
    ap.add_argument("--output", type=Path, default=Path(__file__).with_name("feature-chunks.md"))
    args = ap.parse_args()

    lake = args.data / "lake"
    union = pl.scan_parquet(lake / "ranker_candidates" / f"{args.week}.parquet")
    inp = lake_inputs(lake, args.week)
    before = timed(feature_chunks_before(union, inp, args.chunk))
    now = timed(feature_chunks(union, inp, args.chunk))
    rows, same = [], True
    for i in range(args.chunks):
        (old, t_before), (new, t_now) = next(before), next(now)
        same &= new.equals(old)
        rows.append(
            f"| {i + 1} | {new['customer_id'].n_unique():,} | {new.height:,} | {new.width} | "
            f"{t_before:.1f} | {t_now:.1f} |"
        )
        print(rows[-1], flush=True)
    write_comparison(
        args.output,
        "The feature table, one chunk of customers at a time",
        (
            f"Written by `python benchmarks/feature_chunks.py --data {args.data} --week "
            f"{args.week}` ({platform.machine()}): the first {args.chunks} chunks of "
            f"{args.chunk:,} customers of the week's union, each built as before (joins, then a "
            f"sort) and as now (lookups by position). The two ways give identical frames: "
            f"{same}."
        ),
        ["chunk", "customers", "rows", "columns", "joins + sort s", "lookups s"],
        rows,
        same,
        "two feature tables",
    )


if __name__ == "__main__":
    main()
