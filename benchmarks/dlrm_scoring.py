"""DLRM scoring: `dlrm.predict` running the model on the whole 262,144-row chunk at once (as it
did before) against batches of 16,384 rows inside each chunk (the default now), on a random
feature table of 2,000,000 rows with 100 dense and 12 categorical columns (the validation
week's full-scale table has 23.6M rows) and random weights. Writes benchmarks/dlrm-scoring.md.

    python benchmarks/dlrm_scoring.py
"""

from __future__ import annotations

import platform
import time
from pathlib import Path

import numpy as np
import polars as pl
import torch

from hm_pipeline.ranking import dlrm

ROWS, DENSE, CATS, CHUNK = 2_000_000, 100, 12, 262_144


def table() -> pl.DataFrame:
    rng = np.random.default_rng(0)
    dense = {f"f{j}": rng.gamma(1.0, 3.0, ROWS).astype(np.float32) for j in range(DENSE)}
    cats = {f"cat_{j}": rng.integers(0, 20 + 30 * j, ROWS).astype(np.int32) for j in range(CATS)}
    keys = {"customer_id": np.arange(ROWS, dtype=np.int32) // 100, "article_id": np.zeros(ROWS)}
    return pl.DataFrame({**keys, **dense, **cats})


def main() -> None:
    torch.manual_seed(0)
    frame = table()
    prep = dlrm.Preprocessor.fit(frame.head(200_000))
    model = dlrm.DLRM(2 * len(prep.dense), [len(v) + 1 for v in prep.vocab], dlrm.DLRMConfig())
    rows, scores = [], {}
    for rep in (1, 2):
        for batch in (CHUNK, 16_384):
            t = time.perf_counter()
            scores[batch] = dlrm.predict(model, prep, frame, chunk=CHUNK, batch=batch)
            rows.append(f"| {rep} | {batch:,} | {time.perf_counter() - t:.1f} |")
    diff = float(np.abs(scores[CHUNK] - scores[16_384]).max())
    out = Path(__file__).with_name("dlrm-scoring.md")
    out.write_text(
        "\n".join(
            [
                "# DLRM scoring",
                "",
                f"Written by `python benchmarks/dlrm_scoring.py` ({platform.machine()}, "
                f"torch threads {torch.get_num_threads()}): {ROWS:,} rows, {DENSE} dense and "
                f"{CATS} categorical columns, chunks of {CHUNK:,} rows (inputs prepared per "
                "chunk, the same in both), random weights. Largest difference between the two "
                f"scorings: {diff:.1e}.",
                "",
                "| repeat | rows per model call | wall s (inputs and model) |",
                "|---|---|---|",
                *rows,
                "",
            ]
        )
    )
    print(out.read_text())


if __name__ == "__main__":
    main()
