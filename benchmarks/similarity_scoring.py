"""The similarity sources' scoring of one chunk of customers (`EmbeddingSimilarity._score_chunk`:
the customers' recent purchases times each embedding's neighbour lists, the k best per
customer) on a lake's week, as it was before (each embedding's scores scaled through a diagonal
matrix product after a dense row maximum; the k best found by sorting every scored row) and as
it is now (rows scaled in place; only the rows at or above each customer's k-th largest score,
`candidates.base.at_least_kth`, go to top_k's sort), checked to give the same lists.

The neighbour lists are computed once, outside the timings (the sources compute them once per
week). Writes benchmarks/similarity-scoring.md (or --output).

    python benchmarks/similarity_scoring.py --data data/bench-full --week 2020-09-23
"""

from __future__ import annotations

import argparse
import platform
import time
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
from comparison import write_comparison
from scipy import sparse

from hm_pipeline.candidates.similarity import (
    FusedSimilarity,
    TextSimilarity,
    nearest,
    neighbour_matrix,
)


def sort_top_k(scored: pl.LazyFrame, k: int) -> pl.LazyFrame:
    """`top_k` as it was: every row sorted."""
    return (
        scored.with_columns(pl.col("score").cast(pl.Float64).round(9))
        .sort(["customer_id", "score", "article_id"], descending=[False, True, False])
        .with_columns(
            pl.int_range(1, pl.len() + 1, dtype=pl.Int32).over("customer_id").alias("rank")
        )
        .filter(pl.col("rank") <= k)
    )


def score_chunk_before(src, recent, sources, pool, neighbours) -> pl.DataFrame:
    """`_score_chunk` as it was."""
    who, row = np.unique(recent["customer_id"].to_numpy(), return_inverse=True)
    weights = sparse.csr_matrix(
        (
            recent["weight"].to_numpy().astype(np.float64),
            (row, np.searchsorted(sources, recent["article_id"].to_numpy())),
        ),
        shape=(len(who), len(sources)),
    )
    total = None
    for nn in neighbours:
        scores = (weights @ nn).tocsr()
        if len(neighbours) > 1:
            best = np.asarray(abs(scores).max(axis=1).todense()).ravel()
            scores = (
                sparse.diags(np.divide(1.0, best, out=np.zeros_like(best), where=best > 0)) @ scores
            )
        total = scores if total is None else total + scores
    total = total.tocoo()
    scored = pl.DataFrame(
        {
            "customer_id": who[total.row].astype(np.int32),
            "article_id": pool[total.col].astype(np.int32),
            "score": total.data,
        }
    )
    return sort_top_k(scored.lazy(), src.k).drop("rank").collect()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="a data folder with a lake/")
    ap.add_argument("--week", required=True, help="the week scored, e.g. 2020-09-23")
    ap.add_argument("--k", type=int, default=50, help="candidates per customer (prediction: 50)")
    ap.add_argument("--chunks", type=int, default=3, help="chunks of customers to time")
    ap.add_argument(
        "--output", type=Path, default=Path(__file__).with_name("similarity-scoring.md")
    )
    args = ap.parse_args()
    lake, cutoff = args.data / "lake", date.fromisoformat(args.week)

    def table(name: str) -> pl.DataFrame:
        weekly = lake / name / f"{args.week}.parquet"
        return pl.read_parquet(weekly if weekly.exists() else lake / f"{name}.parquet")

    history = pl.scan_parquet(lake / "transactions.parquet").filter(pl.col("t_dat") < cutoff)
    customers = table("customers_to_score").select(pl.col("customer_id").cast(pl.Int32))
    rows, same = [], True
    for cls in (TextSimilarity, FusedSimilarity):
        src = cls(k=args.k)
        recent, sources, pool = src.week_inputs(history, customers, cutoff)
        neighbours = [
            neighbour_matrix(nearest(table(e), sources, pool, src.neighbours), sources, pool)
            for e in src.embeddings
        ]
        bounds = src.chunk_bounds(recent)[: args.chunks + 1]
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            part = recent.slice(a, b - a)
            t = time.perf_counter()
            before = score_chunk_before(src, part, sources, pool, neighbours)
            t_before = time.perf_counter() - t
            t = time.perf_counter()
            now = src._score_chunk(part, sources, pool, neighbours)
            t_now = time.perf_counter() - t
            same &= now.equals(before)
            rows.append(
                f"| {src.name} | {part['customer_id'].n_unique():,} | {now.height:,} | "
                f"{t_before:.2f} | {t_now:.2f} |"
            )
            print(rows[-1], flush=True)
    write_comparison(
        args.output,
        "Similarity sources: scoring a chunk of customers",
        (
            f"Written by `python benchmarks/similarity_scoring.py --data {args.data} --week "
            f"{args.week}` ({platform.machine()}): the week's customers to score in chunks "
            f"of {src.chunk:,}, their purchases of the last {src.days} days against the "
            f"neighbour lists ({src.neighbours} per article, articles sold in the last "
            f"{src.pool_days} days), k = {args.k}. Before and now give identical lists: "
            f"{same}."
        ),
        ["source", "customers", "rows kept", "before s", "now s"],
        rows,
        same,
        "lists",
    )


if __name__ == "__main__":
    main()
