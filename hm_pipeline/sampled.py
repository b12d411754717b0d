"""The seed's sampled protocol beside the full ranking: for every buyer of week W, one held-out
purchase ranked among 99 articles they never bought (hit rate@10, NDCG@10), and the same
held-out purchase ranked among the whole catalogue (through the source's candidate list).

Sampled metrics flatter: a held-out article only has to beat 99 random, mostly unpopular
articles instead of the whole catalogue, so nearly any popularity signal scores well, and the
ordering of models can change (Krichene and Rendle, "On Sampled Metrics for Item
Recommendation", KDD 2020). The full-ranking columns are the ones that predict MAP@12.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import numpy as np
import polars as pl

from hm_pipeline.negatives import draw_excluding

WHY_THEY_DISAGREE = (
    "Sampled HR@10/NDCG@10 rank the held-out purchase among 99 random articles the customer "
    "never bought, most of them rarely sold, so any popularity signal wins them; the full "
    "ranking competes with the whole catalogue. Sampled metrics flatter every model and can "
    "reorder them (Krichene & Rendle 2020); MAP@12 follows the full-ranking columns."
)

PairScorer = Callable[[np.ndarray, np.ndarray], np.ndarray]


def held_out(labels: pl.DataFrame, seed: int = 0) -> pl.DataFrame:
    """One purchase per buyer of the week: the first day's, ties broken by a seeded hash of
    the article (customer_id, article_id), sorted by customer."""
    return (
        labels.select("customer_id", "article_id", "t_dat")
        .with_columns(pl.col("article_id").hash(seed).alias("_h"))
        .sort("customer_id", "t_dat", "_h")
        .unique("customer_id", keep="first", maintain_order=True)
        .select(pl.col("customer_id").cast(pl.Int32), pl.col("article_id").cast(pl.Int32))
    )


def sampled_negatives(
    held: pl.DataFrame,
    bought: pl.DataFrame,
    catalogue: pl.Series,
    n: int = 99,
    seed: int = 0,
) -> np.ndarray:
    """(len(held), 1 + n) article ids: column 0 the held-out article, then n distinct catalogue
    articles the customer never bought (`bought`: customer_id, article_id). Customers whose
    draw came up short (tiny catalogues) are padded by repeating their draws."""
    rng = np.random.default_rng(seed)
    wanted = held.select("customer_id").with_columns(pl.lit(n).alias("n"))
    pool = pl.DataFrame({"article_id": catalogue.cast(pl.Int32)})
    drawn = draw_excluding(wanted, pool, bought.select("customer_id", "article_id"), rng)
    drawn = drawn.with_columns(pl.int_range(pl.len()).over("customer_id").alias("j")).filter(
        pl.col("j") < n
    )
    wide = held.select("customer_id").join(
        drawn.pivot(on="j", index="customer_id", values="article_id", sort_columns=True),
        on="customer_id",
        how="left",
        maintain_order="left",
    )
    cols = [pl.col(str(j)) if str(j) in wide.columns else pl.lit(None) for j in range(n)]
    # a short draw (tiny catalogues) repeats the row's first negative: a tie, never a free win
    neg = wide.select(
        [
            c.fill_null(pl.col("0") if "0" in wide.columns else -1).alias(str(j))
            for j, c in enumerate(cols)
        ]
    ).to_numpy()
    neg = np.nan_to_num(np.asarray(neg, dtype=np.float64), nan=-1).astype(np.int64)
    return np.hstack([held["article_id"].to_numpy()[:, None].astype(np.int64), neg])


def rank_of_first(scores: np.ndarray) -> np.ndarray:
    """0-based rank of column 0 among each row; ties count half (neither flattered nor
    punished), -inf scores (the model cannot score the article) lose to everything finite."""
    pos = scores[:, :1]
    others = scores[:, 1:]
    better = (others > pos).sum(axis=1)
    ties = (others == pos).sum(axis=1)
    return better + 0.5 * ties


def hr_ndcg(ranks: np.ndarray, k: int = 10) -> tuple[float, float]:
    """Hit rate@k and NDCG@k of 0-based ranks (one relevant article per row)."""
    if len(ranks) == 0:
        return 0.0, 0.0
    hit = ranks < k
    return float(hit.mean()), float(np.where(hit, 1 / np.log2(ranks + 2), 0.0).mean())


def sampled_scores(scorer: PairScorer, customers: np.ndarray, articles: np.ndarray, chunk=4096):
    """scorer over customer chunks (models score a chunk's customers at once)."""
    parts = [
        scorer(customers[s : s + chunk], articles[s : s + chunk])
        for s in range(0, len(customers), chunk)
    ]
    return np.vstack(parts) if parts else np.zeros(articles.shape)


def full_ranks(candidates: pl.DataFrame, held: pl.DataFrame) -> np.ndarray:
    """0-based rank of each held-out purchase in the source's ranked list (inf if absent)."""
    got = held.join(
        candidates.select("customer_id", "article_id", "rank"),
        on=["customer_id", "article_id"],
        how="left",
        maintain_order="left",
    )
    return (got["rank"].cast(pl.Float64) - 1).fill_null(np.inf).to_numpy()


def popularity_scorer(history: pl.LazyFrame, cutoff: date, days: int = 7) -> PairScorer:
    """Scores by sales in the `days` before the cutoff (0 for articles that did not sell)."""
    sales = (
        history.filter(
            (pl.col("t_dat") < cutoff) & (pl.col("t_dat") >= cutoff - timedelta(days=days))
        )
        .group_by("article_id")
        .len()
        .collect()
    )
    ids = sales["article_id"].to_numpy()
    order = np.argsort(ids)
    ids, counts = ids[order], sales["len"].to_numpy()[order].astype(np.float64)

    def score(_customers: np.ndarray, articles: np.ndarray) -> np.ndarray:
        if len(ids) == 0:
            return np.zeros(articles.shape)
        pos = np.minimum(np.searchsorted(ids, articles), len(ids) - 1)
        return np.where(ids[pos] == articles, counts[pos], 0.0)

    return score


def compare(
    scorers: dict[str, PairScorer],
    candidates: dict[str, pl.DataFrame],
    held: pl.DataFrame,
    sample: np.ndarray,
    k: int = 10,
) -> pl.DataFrame:
    """One row per method: sampled HR@k / NDCG@k and full-ranking HR@k / NDCG@k of the same
    held-out purchases."""
    customers = held["customer_id"].to_numpy()
    rows = []
    for name, scorer in scorers.items():
        s_hr, s_ndcg = hr_ndcg(rank_of_first(sampled_scores(scorer, customers, sample)), k)
        f_hr, f_ndcg = hr_ndcg(full_ranks(candidates[name], held), k)
        rows.append(
            {
                "method": name,
                "n_customers": len(customers),
                f"sampled_hr_at_{k}": s_hr,
                f"sampled_ndcg_at_{k}": s_ndcg,
                f"full_hr_at_{k}": f_hr,
                f"full_ndcg_at_{k}": f_ndcg,
            }
        )
    return pl.DataFrame(rows).sort(f"full_ndcg_at_{k}", descending=True)
