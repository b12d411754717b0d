"""One method's row of the weekly evaluation at full-scale sizes: `evaluate_method` (the list
matched with the purchases once for every recall@k and once for the top 12) against each
metric computed on its own (map, hit rate and NDCG on the top 12, recall@12/50/100/200 on the
whole list: what evaluate_method did before). Random lists: 93,684 buyers (2020-09-16 at full
scale) x 200 candidates over 105,542 articles, about 2.4 purchases each, both drawn with a
popular head so that lists hit. The evaluation report computes ~20 such rows for the buyers
and again for those without history. Writes benchmarks/evaluation-metrics.md.

    python benchmarks/evaluation_metrics.py
"""

from __future__ import annotations

import platform
import time
from pathlib import Path

import numpy as np
import polars as pl

from hm_pipeline.evaluation import RECALL_KS, evaluate_method
from hm_pipeline.metrics import hit_rate_at_k, map_at_k, ndcg_at_k, recall_at_k

BUYERS, K, ARTICLES, PURCHASES = 93_684, 200, 105_542, 2.4


def inputs(seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    popularity = 1 / (np.arange(ARTICLES) + 50.0) ** 0.9  # popular articles more often
    popularity /= popularity.sum()
    head = rng.choice(ARTICLES, size=(BUYERS, K), p=popularity)
    ranked = (
        pl.DataFrame(
            {
                "customer_id": np.repeat(np.arange(BUYERS, dtype=np.int32), K),
                "article_id": head.ravel().astype(np.int32),
                "rank": np.tile(np.arange(1, K + 1, dtype=np.int32), BUYERS),
            }
        )
        .unique(["customer_id", "article_id"], keep="first", maintain_order=True)
        .with_columns(
            pl.int_range(1, pl.len() + 1, dtype=pl.Int32).over("customer_id").alias("rank")
        )
    )
    n = int(BUYERS * PURCHASES)
    labels = pl.DataFrame(
        {
            "customer_id": rng.integers(0, BUYERS, n).astype(np.int32),
            "article_id": rng.choice(ARTICLES, n, p=popularity).astype(np.int32),
        }
    )
    return ranked, labels


def each_on_its_own(ranked: pl.DataFrame, labels: pl.DataFrame) -> dict:
    top12 = ranked.filter(pl.col("rank") <= 12)
    return {
        "map_at_12": map_at_k(top12, labels, 12),
        "hit_rate_at_12": hit_rate_at_k(top12, labels, 12),
        "ndcg_at_12": ndcg_at_k(top12, labels, 12),
        **{f"recall_at_{k}": recall_at_k(ranked, labels, k) for k in RECALL_KS},
    }


def main() -> None:
    ranked, labels = inputs()
    rows, values = [], {}
    for rep in (1, 2):
        for name, fn in (
            ("each metric on its own", lambda: each_on_its_own(ranked, labels)),
            ("evaluate_method", lambda: evaluate_method("m", ranked, labels, ARTICLES)),
        ):
            t = time.perf_counter()
            values[name] = fn()
            rows.append(f"| {rep} | {name} | {time.perf_counter() - t:.2f} |")
    own, shared = values["each metric on its own"], values["evaluate_method"]
    same = all(np.isclose(own[k], shared[k], rtol=1e-12) for k in own)
    out = Path(__file__).with_name("evaluation-metrics.md")
    out.write_text(
        "\n".join(
            [
                "# One row of the weekly evaluation",
                "",
                f"Written by `python benchmarks/evaluation_metrics.py` ({platform.machine()}): "
                f"{BUYERS:,} buyers x {K} candidates ({ranked.height:,} distinct rows), "
                f"{labels.height:,} purchases; MAP@12 {own['map_at_12']:.4f}, recall@200 "
                f"{own['recall_at_200']:.4f}; both ways give the same values: {same}.",
                "",
                "| repeat | computed as | wall s |",
                "|---|---|---|",
                *rows,
                "",
            ]
        )
    )
    print(out.read_text())


if __name__ == "__main__":
    main()
