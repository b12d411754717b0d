"""Reports on the learned models: the sampled protocol beside the full ranking, and NeuMF
trained under each negative-sampling strategy on the same week and customers."""

from __future__ import annotations

from datetime import date

import polars as pl

from hm_pipeline import sampled
from hm_pipeline.candidates.base import SourceContext
from hm_pipeline.candidates.heuristics import PopularityLastWeek
from hm_pipeline.candidates.learned import LearnedSource, NeuMFSource
from hm_pipeline.evaluation import evaluate_method
from hm_pipeline.negatives import STRATEGIES


def sample_for_week(
    history: pl.LazyFrame, labels: pl.DataFrame, articles: pl.DataFrame, week: date, seed: int = 0
) -> tuple[pl.DataFrame, object]:
    """The held-out purchase of every buyer of `week` and its 99 sampled negatives (never an
    article the customer bought before or during the week)."""
    held = sampled.held_out(labels, seed)
    bought = pl.concat(
        [
            history.filter(pl.col("t_dat") < week)
            .select("customer_id", "article_id")
            .join(held.lazy().select("customer_id"), on="customer_id", how="semi")
            .collect(),
            labels.select("customer_id", "article_id"),
        ]
    ).unique()
    return held, sampled.sampled_negatives(held, bought, articles["article_id"], seed=seed)


def sampled_table(
    history: pl.LazyFrame,
    labels: pl.DataFrame,
    articles: pl.DataFrame,
    week: date,
    learned: dict[str, LearnedSource],
    candidates: dict[str, pl.DataFrame],
    seed: int = 0,
) -> pl.DataFrame:
    """Sampled and full-ranking HR@10 / NDCG@10 of last-week popularity and each learned
    source (trained for `week`) on the same held-out purchases."""
    held, sample = sample_for_week(history, labels, articles, week, seed)
    scorers = {"popularity_last_week": sampled.popularity_scorer(history, week)}
    scorers |= {name: src.pair_scores for name, src in learned.items()}
    return sampled.compare(scorers, candidates, held, sample)


def negative_strategy_table(
    history: pl.LazyFrame,
    labels: pl.DataFrame,
    ctx: SourceContext,
    week: date,
    strategies: tuple[str, ...] = STRATEGIES,
    make=NeuMFSource,
    k: int = 200,
) -> pl.DataFrame:
    """NeuMF trained with each negative strategy for `week`, on the week's buyers: full-ranking
    MAP@12 / hit rate@12 / recall@200 and sampled HR@10 / NDCG@10, same customers for all."""
    buyers = labels["customer_id"].unique().sort()
    held, sample = sample_for_week(history, labels, ctx.articles, week, ctx.seed)
    rows = []
    methods = {"popularity_last_week": PopularityLastWeek(k=k)}
    methods |= {f"neumf_{s}": make(k=k, strategy=s) for s in strategies}
    for name, src in methods.items():
        ranked = src.generate(history, buyers, week, ctx)
        full = evaluate_method(name, ranked, labels, ctx.articles.height)
        scorer = (
            sampled.popularity_scorer(history, week)
            if isinstance(src, PopularityLastWeek)
            else src.pair_scores
        )
        cmp = sampled.compare({name: scorer}, {name: ranked}, held, sample).drop("n_customers")
        rows.append(
            {
                "method": name,
                "n_customers": full["n_customers"],
                "map_at_12": full["map_at_12"],
                "hit_rate_at_12": full["hit_rate_at_12"],
                "recall_at_200": full["recall_at_200"],
                **cmp.drop("method").row(0, named=True),
                "final_loss": src.losses[-1] if getattr(src, "losses", None) else None,
            }
        )
    return pl.DataFrame(rows)
