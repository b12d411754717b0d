"""Product-similarity sources: articles most similar to each customer's recent purchases
under an article embedding (text, image, metadata, co-purchase), and one fusing them.

A customer's recent purchases (the last `max_recent` distinct articles of the last `days`)
weigh 2^(-age / half_life). Targets are the articles sold in the last `pool_days` (what is on
sale). Each purchased article's `neighbours` most similar targets come from a chunked matmul +
top-k (a sparse purchased x target matrix); a target's score is the weighted sum of its
similarities to the customer's purchases: a sparse product of the customers' weights with that
matrix. Customers are scored in chunks, each keeping its k best per customer, so memory does
not grow with the number of customers (the prediction week scores all of them).
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl
from scipy import sparse

from hm_pipeline.arrays import positions
from hm_pipeline.candidates.base import CandidateSource, SourceContext, at_least_kth, top_k
from hm_pipeline.embeddings.common import matrix


def recent_purchases(history: pl.LazyFrame, cutoff, days: int, max_recent: int, half_life: float):
    """customer_id, article_id, weight of each customer's last distinct purchases."""
    return (
        history.filter(pl.col("t_dat") >= cutoff - timedelta(days=days))
        .group_by("customer_id", "article_id")
        .agg(pl.col("t_dat").max())
        .sort(["customer_id", "t_dat", "article_id"], descending=[False, True, False])
        .with_columns(pl.int_range(pl.len()).over("customer_id").alias("_n"))
        .filter(pl.col("_n") < max_recent)
        .select(
            "customer_id",
            "article_id",
            (2.0 ** (-(pl.lit(cutoff) - pl.col("t_dat")).dt.total_days() / half_life)).alias(
                "weight"
            ),
        )
    )


def nearest(
    table: pl.DataFrame, sources: np.ndarray, targets: np.ndarray, k: int, chunk: int = 4096
) -> pl.DataFrame:
    """source, article_id, sim: the k targets most similar (cosine) to each source article."""
    import torch

    ids, x = matrix(table)
    s_pos, found = positions(ids, sources)
    sources, s_pos = sources[found], s_pos[found]
    t_pos, found = positions(ids, targets)
    targets, t_pos = targets[found], t_pos[found]
    if len(sources) == 0 or len(targets) == 0:
        return pl.DataFrame(schema={"source": pl.Int32, "article_id": pl.Int32, "sim": pl.Float32})
    xt = torch.from_numpy(x[t_pos].T.copy())
    k = min(k, len(targets))
    parts = []
    # one buffer for every chunk's similarities: a fresh one per chunk costs more in page
    # faults than the product itself when the embedding is short
    buf = torch.empty((min(chunk, len(sources)), len(targets)), dtype=xt.dtype)
    for s in range(0, len(sources), chunk):
        src = sources[s : s + chunk]
        sims = torch.matmul(torch.from_numpy(x[s_pos[s : s + chunk]]), xt, out=buf[: len(src)])
        top = torch.topk(sims, k, dim=1)
        parts.append(
            pl.DataFrame(
                {
                    "source": np.repeat(src, k).astype(np.int32),
                    "article_id": targets[top.indices.numpy().ravel()].astype(np.int32),
                    "sim": top.values.numpy().ravel(),
                }
            )
        )
    return pl.concat(parts)


class EmbeddingSimilarity(CandidateSource):
    """Base: similarity to recent purchases under the embeddings in `embeddings` (summed, each
    scaled to its customer's best score when there are several)."""

    def __init__(
        self,
        k: int = 200,
        days: int = 90,
        max_recent: int = 20,
        half_life_days: float = 14.0,
        pool_days: int = 28,
        neighbours: int = 50,
        chunk: int = 20_000,
    ):
        super().__init__(k)
        self.days, self.max_recent, self.half_life = days, max_recent, half_life_days
        self.pool_days, self.neighbours, self.chunk = pool_days, neighbours, chunk

    def score(self, history, customers, cutoff, ctx: SourceContext):
        missing = [e for e in self.embeddings if e not in ctx.embeddings]
        if missing:
            raise ValueError(f"source {self.name} needs the embeddings {missing}")
        recent, sources, pool = self.week_inputs(history, customers, cutoff)
        neighbours = [
            neighbour_matrix(
                nearest(ctx.embeddings[name], sources, pool, self.neighbours), sources, pool
            )
            for name in self.embeddings
        ]
        bounds = self.chunk_bounds(recent)
        parts = [
            self._score_chunk(recent.slice(a, b - a), sources, pool, neighbours)
            for a, b in zip(bounds[:-1], bounds[1:], strict=True)
        ]
        return (
            pl.concat(parts)
            if parts
            else pl.DataFrame(
                schema={"customer_id": pl.Int32, "article_id": pl.Int32, "score": pl.Float64}
            )
        )

    def week_inputs(
        self, history: pl.LazyFrame, customers: pl.DataFrame, cutoff
    ) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
        """The customers' recent purchases (sorted by customer, article), the articles they
        bought (the neighbour lists' rows) and the articles sold in the last `pool_days` (the
        targets), from the history before `cutoff`."""
        recent = (
            recent_purchases(history, cutoff, self.days, self.max_recent, self.half_life)
            .join(customers.lazy(), on="customer_id", how="semi")
            .sort("customer_id", "article_id")
            .collect()
        )
        pool = (
            history.filter(pl.col("t_dat") >= cutoff - timedelta(days=self.pool_days))
            .select("article_id")
            .unique()
            .collect()["article_id"]
            .sort()
            .to_numpy()
        )
        return recent, recent["article_id"].unique().sort().to_numpy(), pool

    def chunk_bounds(self, recent: pl.DataFrame) -> list[int]:
        """Row offsets of `recent` (sorted by customer) that cut it into chunks of `chunk`
        whole customers."""
        ids = recent["customer_id"].to_numpy()
        firsts = np.r_[0, np.flatnonzero(np.diff(ids)) + 1]  # each customer's first row
        return sorted({*firsts[:: self.chunk].tolist(), recent.height})

    def _score_chunk(
        self,
        recent: pl.DataFrame,
        sources: np.ndarray,
        pool: np.ndarray,
        neighbours: list[sparse.csr_matrix],
    ) -> pl.DataFrame:
        """The k best targets of each customer in `recent` (whole customers)."""
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
            if len(neighbours) > 1:  # each embedding's scores scaled to the customer's best
                scale_rows_to_best(scores)
            total = scores if total is None else total + scores
        total = total.tocoo()
        scored = pl.DataFrame(
            {
                "customer_id": who[total.row].astype(np.int32),
                "article_id": pool[total.col].astype(np.int32),
                "score": total.data,
            }
        )
        # ~1,000 scored rows per customer: the selection first (on the scores rounded as top_k
        # rounds them, which may tie), then the sort of what is left, not of every row
        # (benchmarks/similarity-scoring.md times a chunk both ways)
        kept = (
            scored.lazy()
            .with_columns(pl.col("score").round(9))
            .filter(at_least_kth("score", "customer_id", self.k))
        )
        return top_k(kept, self.k).drop("rank").collect()


def scale_rows_to_best(m: sparse.csr_matrix) -> None:
    """Divide each row of `m` (in place) by its largest absolute value; rows without entries
    stay empty. The same values as multiplying by a diagonal matrix of the inverses, without
    building a product of the whole matrix."""
    lengths = np.diff(m.indptr)
    full = lengths > 0
    best = np.zeros(m.shape[0], dtype=m.dtype)
    best[full] = np.maximum.reduceat(np.abs(m.data), m.indptr[:-1][full])
    inv = np.divide(1.0, best, out=np.zeros_like(best), where=best > 0)
    m.data *= np.repeat(inv, lengths)


def neighbour_matrix(nn: pl.DataFrame, sources: np.ndarray, pool: np.ndarray) -> sparse.csr_matrix:
    """`nearest`'s rows as a sparse (sources x pool) matrix of similarities."""
    return sparse.csr_matrix(
        (
            nn["sim"].to_numpy().astype(np.float64),
            (
                np.searchsorted(sources, nn["source"].to_numpy()),
                np.searchsorted(pool, nn["article_id"].to_numpy()),
            ),
        ),
        shape=(len(sources), len(pool)),
    )


class TextSimilarity(EmbeddingSimilarity):
    """Articles whose descriptions read like the customer's recent purchases (MiniLM)."""

    name = "similar_text"
    embeddings = ("text_embeddings",)


class ImageSimilarity(EmbeddingSimilarity):
    """Articles that look like the customer's recent purchases (image backbone)."""

    name = "similar_image"
    embeddings = ("image_embeddings",)


class MetadataSimilarity(EmbeddingSimilarity):
    """Articles sharing the attributes of the customer's recent purchases."""

    name = "similar_metadata"
    embeddings = ("metadata_embeddings",)


class CopurchaseSimilarity(EmbeddingSimilarity):
    """Articles bought with the customer's recent purchases (co-purchase embedding of W)."""

    name = "similar_copurchase"
    embeddings = ("copurchase_embeddings",)


class FusedSimilarity(EmbeddingSimilarity):
    """All four embeddings: each one's scores scaled to the customer's best, then summed."""

    name = "similar_fused"
    embeddings = (
        "text_embeddings",
        "image_embeddings",
        "metadata_embeddings",
        "copurchase_embeddings",
    )


SIMILARITY_SOURCES: list[type[CandidateSource]] = [
    TextSimilarity,
    ImageSimilarity,
    MetadataSimilarity,
    CopurchaseSimilarity,
    FusedSimilarity,
]
