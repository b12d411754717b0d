"""Negative sampling: the seed's four strategies, seeded and vectorized.

Every strategy returns rows (customer_id, week, article_id, label, strategy): label 1 for the
positives it builds on, 0 for the negatives, and never a negative the customer bought in the
window. Draws are made for all customers at once with oversampling, then bought articles are
removed by an anti-join and the first n survivors kept; a few rounds top up the customers that
came up short (a loop over rounds, never over customers).
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl

STRATEGIES = ("loo_random", "loo_unpopular", "weekly_random", "neighbourhood")
OUT_SCHEMA = {
    "customer_id": pl.Int32,
    "article_id": pl.Int32,
    "label": pl.Int8,
    "strategy": pl.String,
}


def _window(history: pl.LazyFrame, cutoff: date, days: int) -> pl.DataFrame:
    return (
        history.filter(
            pl.col("t_dat").is_between(cutoff - timedelta(days=days), cutoff, closed="left")
        )
        .with_row_index("_order")
        .select("_order", "t_dat", "customer_id", "article_id")
        .collect()
    )


def last_purchases(window: pl.DataFrame) -> pl.DataFrame:
    """Each customer's last purchase (latest day, then latest row): the held-out positive."""
    return (
        window.sort("customer_id", "t_dat", "_order")
        .group_by("customer_id", maintain_order=True)
        .last()
        .select("customer_id", "article_id")
    )


def draw_excluding(
    wanted: pl.DataFrame,
    pool: pl.DataFrame,
    bought: pl.DataFrame,
    rng: np.random.Generator,
    rounds: int = 4,
) -> pl.DataFrame:
    """For each row of `wanted` (key columns + n), draw n distinct articles from `pool`
    (group columns + article_id; no group column = one pool for all) that the customer did not
    buy (`bought`: customer_id, article_id). Returns the key columns + article_id."""
    group_cols = [c for c in pool.columns if c != "article_id"]
    pool = pool.unique().sort([*group_cols, "article_id"])
    pool_articles = pool["article_id"].cast(pl.Int32).to_numpy()
    if group_cols:
        groups = (
            pool.with_row_index("_start")
            .group_by(group_cols, maintain_order=True)
            .agg(pl.col("_start").first().cast(pl.Int64), pl.len().cast(pl.Int64).alias("_size"))
        )
    else:
        groups = pl.DataFrame(
            {"_start": [0], "_size": [pool.height]}, schema={"_start": pl.Int64, "_size": pl.Int64}
        )
    keys = [c for c in wanted.columns if c != "n"]
    got = pl.DataFrame(schema={**{k: wanted.schema[k] for k in keys}, "article_id": pl.Int32})
    todo = wanted.with_columns(pl.col("n").cast(pl.Int64))
    for _ in range(rounds):  # each round tops up the rows still short, all at once
        located = (
            todo.join(groups, on=group_cols, how="inner")
            if group_cols
            else todo.join(groups, how="cross")
        )
        located = located.filter(pl.col("_size") > 0)
        if located.height == 0:
            break
        m = (located["n"] * 2 + 5).to_numpy()
        rows = np.repeat(np.arange(located.height), m)
        start = located["_start"].to_numpy()[rows]
        pick = start + (rng.random(len(rows)) * located["_size"].to_numpy()[rows]).astype(np.int64)
        draws = (
            located.select(keys)[rows]
            .with_columns(
                pl.Series("article_id", pool_articles[pick]),
                pl.Series("_seq", np.arange(len(rows))),
            )
            .join(bought, on=["customer_id", "article_id"], how="anti")
            .join(got, on=[*keys, "article_id"], how="anti")
            .sort("_seq")
            .unique([*keys, "article_id"], keep="first", maintain_order=True)
            .join(located.select([*keys, "n"]), on=keys, maintain_order="left")
            .filter(pl.int_range(pl.len()).over(keys) < pl.col("n"))
            .select([*keys, "article_id"])
        )
        got = pl.concat([got, draws])
        have = got.group_by(keys).len()
        todo = (
            wanted.join(have, on=keys, how="left")
            .with_columns((pl.col("n") - pl.col("len").fill_null(0)).alias("n"))
            .filter(pl.col("n") > 0)
            .select([*keys, "n"])
        )
        if todo.height == 0:
            break
    return got


def engagement(history: pl.LazyFrame, cutoff: date) -> pl.DataFrame:
    """Per article: unique buyers x purchases / days available, over lifetime and 3 months,
    the seed's engagement score (low = rarely bought for a long time)."""
    h = history.filter(pl.col("t_dat") < cutoff)
    out = []
    for name, start in (("all", None), ("3m", cutoff - timedelta(days=91))):
        w = h if start is None else h.filter(pl.col("t_dat") >= start)
        out.append(
            w.group_by("article_id").agg(
                (
                    pl.col("customer_id").n_unique().cast(pl.Float64)
                    * pl.len()
                    / ((pl.lit(cutoff) - pl.col("t_dat").min()).dt.total_days() + 1)
                ).alias(f"engagement_{name}")
            )
        )
    return (
        out[0]
        .join(out[1], on="article_id", how="left")
        .with_columns(pl.col("engagement_3m").fill_null(0.0))
        .sort("article_id")
        .collect()
    )


def sample_negatives(
    history: pl.LazyFrame,
    articles: pl.DataFrame,
    cutoff: date,
    strategy: str,
    n: int,
    seed: int,
    window_days: int = 91,
    per: str = "positive",
    last_n: int = 5,
    unpopular_share: float = 0.2,
) -> pl.DataFrame:
    """Positives and negatives for training models that score week `cutoff`.

    `per` = 'positive': n negatives per positive (NeuMF: 5); 'customer': n in total per
    customer (ranker training sets: 30). Customers are those who bought in the window."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy '{strategy}'; one of {STRATEGIES}")
    rng = np.random.default_rng(seed)
    window = _window(history, cutoff, window_days)
    bought = window.select("customer_id", "article_id").unique()
    catalogue = articles.select(pl.col("article_id").cast(pl.Int32))

    if strategy == "weekly_random":
        positives = (
            window.with_columns(
                ((pl.lit(cutoff) - pl.col("t_dat")).dt.total_days() // 7).alias("week")
            )
            .select("customer_id", "week", "article_id")
            .unique()
            .sort("customer_id", "week", "article_id")
        )
        wanted = positives.group_by("customer_id", "week", maintain_order=True).agg(
            pl.len().alias("n")
        )
        wanted = wanted.with_columns(
            (pl.col("n") * n if per == "positive" else pl.lit(n)).cast(pl.Int64).alias("n")
        )
        negs = draw_excluding(wanted, catalogue, bought, rng)
        pos = positives
    else:
        if strategy == "neighbourhood":
            pos = (
                window.sort("customer_id", "t_dat", "_order")
                .group_by("customer_id", maintain_order=True)
                .tail(last_n)
                .select("customer_id", "article_id")
                .unique(maintain_order=True)
            )
        else:
            pos = last_purchases(window)
        per_customer = pos.group_by("customer_id", maintain_order=True).agg(pl.len().alias("k"))
        wanted = per_customer.select(
            "customer_id",
            (pl.col("k") * n if per == "positive" else pl.lit(n)).cast(pl.Int64).alias("n"),
        )
        if strategy == "loo_random":
            negs = draw_excluding(wanted, catalogue, bought, rng)
        elif strategy == "loo_unpopular":
            eng = catalogue.join(
                engagement(history, cutoff), on="article_id", how="left"
            ).with_columns(pl.col("engagement_all", "engagement_3m").fill_null(0.0))
            score = eng["engagement_all"].rank() + eng["engagement_3m"].rank()
            cut = score.quantile(unpopular_share)
            pool = eng.filter(score <= cut).select("article_id")
            negs = draw_excluding(wanted, pool, bought, rng)
        else:  # neighbourhood: same product type and index group as a recent purchase
            attrs = articles.select(
                pl.col("article_id").cast(pl.Int32), "product_type_no", "index_group_no"
            )
            near = (
                pos.join(attrs, on="article_id")
                .select("customer_id", "product_type_no", "index_group_no")
                .unique()
                .sort("customer_id", "product_type_no", "index_group_no")
            )
            shares = near.group_by("customer_id", maintain_order=True).agg(pl.len().alias("g"))
            wanted_g = (
                near.join(wanted, on="customer_id")
                .join(shares, on="customer_id")
                .select(
                    "customer_id",
                    "product_type_no",
                    "index_group_no",
                    ((pl.col("n") + pl.col("g") - 1) // pl.col("g")).alias("n"),
                )
            )
            pool = attrs.select("product_type_no", "index_group_no", "article_id")
            negs = draw_excluding(wanted_g, pool, bought, rng).select("customer_id", "article_id")
            negs = (
                negs.unique(maintain_order=True)
                .join(wanted, on="customer_id", maintain_order="left")
                .filter(pl.int_range(pl.len()).over("customer_id") < pl.col("n"))
                .select("customer_id", "article_id")
            )
            # small neighbourhoods run dry: top up with random negatives
            short = (
                wanted.join(negs.group_by("customer_id").len(), on="customer_id", how="left")
                .select("customer_id", (pl.col("n") - pl.col("len").fill_null(0)).alias("n"))
                .filter(pl.col("n") > 0)
            )
            if short.height:
                taken = pl.concat([bought, negs.cast(bought.schema)])
                negs = pl.concat([negs, draw_excluding(short, catalogue, taken, rng)])
    week = pl.col("week") if "week" in pos.columns else pl.lit(None)
    out = pl.concat(
        [
            pos.select(
                "customer_id",
                week.cast(pl.Int16).alias("week"),
                "article_id",
                pl.lit(1, pl.Int8).alias("label"),
            ),
            negs.select(
                "customer_id",
                week.cast(pl.Int16).alias("week"),
                "article_id",
                pl.lit(0, pl.Int8).alias("label"),
            ),
        ]
    ).with_columns(pl.lit(strategy).alias("strategy"))
    return out.cast(OUT_SCHEMA).sort(
        "customer_id", "week", "label", "article_id", descending=[False, False, True, False]
    )
