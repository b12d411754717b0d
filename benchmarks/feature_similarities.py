"""The feature table's similarity columns (`ranking.features._similarities`): rows multiplied
262,144 at a time (the old block) against 2,048 at a time (the default now), both with the
catalogue positions found once (so this times the block size alone), for one chunk of the
full-scale validation week (20,000 customers x 255 candidates = 5.1M rows; the week's union has
23.2M rows for 91,154 customers) with the four embeddings' widths (text 384, image 128,
co-purchase 48, metadata 32) over 105,542 articles, random vectors. Writes
benchmarks/feature-similarities.md.

    python benchmarks/feature_similarities.py
"""

from __future__ import annotations

import platform
import time
from pathlib import Path

import numpy as np
import polars as pl

from hm_pipeline.ranking.features import _similarities

ARTICLES, CUSTOMERS, PER_CUSTOMER, RECENT = 105_542, 20_000, 255, 8
DIMS = {"text_embeddings": 384, "image_embeddings": 128, "copurchase_embeddings": 48,
        "metadata_embeddings": 32}  # fmt: skip


def inputs() -> tuple[pl.DataFrame, pl.DataFrame, dict[str, pl.DataFrame]]:
    rng = np.random.default_rng(0)
    ids = np.arange(ARTICLES, dtype=np.int32)
    emb = {
        name: pl.DataFrame(
            {
                "article_id": ids,
                "embedding": pl.Series(
                    rng.standard_normal((ARTICLES, d), dtype=np.float32),
                    dtype=pl.Array(pl.Float32, d),
                ),
            }
        )
        for name, d in DIMS.items()
    }
    frame = pl.DataFrame(
        {
            "customer_id": np.repeat(np.arange(CUSTOMERS, dtype=np.int32), PER_CUSTOMER),
            "article_id": rng.integers(0, ARTICLES, CUSTOMERS * PER_CUSTOMER).astype(np.int32),
        }
    )
    recent = pl.DataFrame(
        {
            "customer_id": np.repeat(np.arange(CUSTOMERS, dtype=np.int32), RECENT),
            "article_id": rng.integers(0, ARTICLES, CUSTOMERS * RECENT).astype(np.int32),
            "weight": rng.random(CUSTOMERS * RECENT),
        }
    )
    return frame, recent, emb


def main() -> None:
    frame, recent, emb = inputs()
    rows, out = [], {}
    for rep in (1, 2):
        for block in (262_144, 2_048):
            t = time.perf_counter()
            out[block] = _similarities(frame, recent, emb, block=block)
            rows.append(f"| {rep} | {block:,} | {time.perf_counter() - t:.1f} |")
    same = all(np.array_equal(out[262_144][k], out[2_048][k]) for k in out[2_048])
    path = Path(__file__).with_name("feature-similarities.md")
    path.write_text(
        "\n".join(
            [
                "# Similarity features",
                "",
                f"Written by `python benchmarks/feature_similarities.py` ({platform.machine()}): "
                f"{frame.height:,} rows ({CUSTOMERS:,} customers), embeddings of widths "
                f"{', '.join(str(d) for d in DIMS.values())} over {ARTICLES:,} articles, "
                f"{RECENT} recent purchases per customer. Identical columns both ways: {same}.",
                "",
                "| repeat | rows per block | wall s (four columns) |",
                "|---|---|---|",
                *rows,
                "",
            ]
        )
    )
    print(path.read_text())


if __name__ == "__main__":
    main()
