"""The feature table's similarity columns (`ranking.features._similarities`) for one chunk of
20,000 customers with the four embeddings' widths (text 384, image 128, co-purchase 48,
metadata 32) over 105,542 articles, random vectors:

- rows multiplied 262,144 at a time (the old block) against 2,048 at a time (the default since
  6a1afa3), float64 profiles as then: 255 candidates per customer (5.1M rows, a chunk of the
  full-scale validation week, whose union has 23.2M rows for 91,154 customers);
- customer profiles summed in float64 (as before: scipy copied each embedding's whole matrix
  to float64 for every chunk) against float32 (the default now), blocks of 2,048: 255 and 85
  candidates per customer (85: the prediction week's cut union, 116M rows for 1.37M
  customers).

Writes benchmarks/feature-similarities.md.

    python benchmarks/feature_similarities.py
"""

from __future__ import annotations

import platform
import time
from pathlib import Path

import numpy as np
import polars as pl

from hm_pipeline.ranking.features import _similarities

ARTICLES, CUSTOMERS, RECENT = 105_542, 20_000, 8
DIMS = {"text_embeddings": 384, "image_embeddings": 128, "copurchase_embeddings": 48,
        "metadata_embeddings": 32}  # fmt: skip


def inputs(per_customer: int) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, pl.DataFrame]]:
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
            "customer_id": np.repeat(np.arange(CUSTOMERS, dtype=np.int32), per_customer),
            "article_id": rng.integers(0, ARTICLES, CUSTOMERS * per_customer).astype(np.int32),
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
    rows, diffs = [], []
    for per_customer in (255, 85):
        frame, recent, emb = inputs(per_customer)
        runs = [(262_144, np.float64), (2_048, np.float64), (2_048, np.float32)]
        if per_customer != 255:
            runs = runs[1:]
        for rep in (1, 2):
            out = {}
            for block, dtype in runs:
                t = time.perf_counter()
                out[block, dtype] = _similarities(frame, recent, emb, block=block, dtype=dtype)
                rows.append(
                    f"| {rep} | {frame.height:,} | {block:,} | {np.dtype(dtype).name} | "
                    f"{time.perf_counter() - t:.1f} |"
                )
        a, b = out[2_048, np.float64], out[2_048, np.float32]
        diffs.append(max(float(np.abs(a[k] - b[k]).max()) for k in a))
        if per_customer == 255:
            same = all(np.array_equal(out[262_144, np.float64][k], a[k]) for k in a)
    path = Path(__file__).with_name("feature-similarities.md")
    path.write_text(
        "\n".join(
            [
                "# Similarity features",
                "",
                f"Written by `python benchmarks/feature_similarities.py` ({platform.machine()}): "
                f"{CUSTOMERS:,} customers, embeddings of widths "
                f"{', '.join(str(d) for d in DIMS.values())} over {ARTICLES:,} articles, "
                f"{RECENT} recent purchases per customer. Block sizes give identical columns: "
                f"{same}. Largest difference between float64 and float32 profiles (a cosine): "
                f"{max(diffs):.1e}.",
                "",
                "| repeat | rows | rows per block | profiles | wall s (four columns) |",
                "|---|---|---|---|---|",
                *rows,
                "",
            ]
        )
    )
    print(path.read_text())


if __name__ == "__main__":
    main()
