"""Figures of a world in Kaggle format, beside the published figures of the real data."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import polars as pl

from hm_pipeline.metrics import map_at_k
from hm_pipeline.schema import (
    ARTICLES_FILE,
    CUSTOMERS_FILE,
    SYNTHETIC_DIR,
    TRANSACTIONS_FILE,
    article_image_relpath_expr,
)
from hm_pipeline.synth import reference


def scan_transactions(raw_dir: Path) -> pl.LazyFrame:
    """transactions_train.csv of a world, typed as Kaggle's columns (hex customer ids)."""
    return pl.scan_csv(
        raw_dir / TRANSACTIONS_FILE,
        schema={
            "t_dat": pl.Date,
            "customer_id": pl.String,
            "article_id": pl.Int64,
            "price": pl.Float64,
            "sales_channel_id": pl.Int8,
        },
    )


def last_week_popularity_map(raw_dir: Path, k: int = 12) -> float:
    """MAP@k of recommending the previous week's k best sellers to every customer who buys in
    the data's final week: the difficulty yardstick of the competition (~0.02 on real data)."""
    txn = scan_transactions(raw_dir)
    last = txn.select(pl.col("t_dat").max()).collect().item()
    week_start = last - timedelta(days=6)
    truth = txn.filter(pl.col("t_dat") >= week_start).select("customer_id", "article_id")
    top = (
        txn.filter(
            pl.col("t_dat").is_between(week_start - timedelta(days=7), week_start, closed="left")
        )
        .group_by("article_id")
        .agg(pl.len().alias("n"))
        .sort(["n", "article_id"], descending=[True, False])
        .head(k)
        .with_columns(pl.int_range(1, pl.len() + 1).alias("rank"))
    )
    preds = truth.select("customer_id").unique().join(top, how="cross")
    return map_at_k(preds, truth, k)


def oracle_on_week(
    raw_dir: Path, week_start: date, sample: int = 20_000, seed: int = 0
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The oracle's top 12 for (a sample of) the buyers of the week, and their purchases in it:
    (oracle ranking, truth). `sample` = 0 scores every buyer."""
    from hm_pipeline.synth.oracle import oracle_top_k

    txn = scan_transactions(raw_dir)
    truth = (
        txn.filter(pl.col("t_dat").is_between(week_start, week_start + timedelta(days=6)))
        .select("customer_id", "article_id")
        .collect()
    )
    buyers = truth["customer_id"].unique().sort()
    if sample and len(buyers) > sample:
        buyers = buyers.sample(sample, seed=seed).sort()
    top = oracle_top_k(raw_dir, txn, week_start, buyers)
    return top, truth.filter(pl.col("customer_id").is_in(buyers.implode()))


def last_week_oracle_map(raw_dir: Path, sample: int = 20_000, seed: int = 0) -> float:
    """MAP@12 of the oracle on (a sample of) the final week's buyers: the ceiling."""
    last = scan_transactions(raw_dir).select(pl.col("t_dat").max()).collect().item()
    top, truth = oracle_on_week(raw_dir, last - timedelta(days=6), sample, seed)
    return map_at_k(top, truth)


def world_figures(raw_dir: Path) -> dict[str, float]:
    """The figures of the world in `raw_dir` that the real data is known by."""
    raw_dir = Path(raw_dir)
    txn = scan_transactions(raw_dir)
    n_customers = pl.scan_csv(raw_dir / CUSTOMERS_FILE).select(pl.len()).collect().item()
    articles = pl.read_csv(
        raw_dir / ARTICLES_FILE,
        columns=["article_id", "product_code"],
        schema_overrides={"article_id": pl.Int64},
    )
    with_image = articles.select(article_image_relpath_expr().alias("p"))["p"]
    n_images = sum((raw_dir / p).exists() for p in with_image)  # one stat per article
    last = txn.select(pl.col("t_dat").max()).collect().item()
    per_cust = (
        txn.group_by("customer_id")
        .agg(pl.len().alias("n"), pl.col("t_dat").max().alias("last"))
        .collect(engine="streaming")
    )
    per_art = txn.group_by("article_id").agg(pl.len().alias("n")).collect(engine="streaming")
    overall = txn.select(
        pl.len().alias("transactions"),
        (pl.col("sales_channel_id") == 2).mean().alias("share_online"),
        pl.col("price").median().alias("price_median"),
    ).collect()
    pairs = txn.group_by("customer_id", "article_id").agg(pl.col("t_dat").n_unique().alias("d"))
    single_date = pairs.select((pl.col("d") == 1).mean()).collect(engine="streaming").item()
    dup_rows = (
        (txn.group_by(pl.all()).agg(pl.len().alias("n")).select((pl.col("n") - 1).sum()))
        .collect(engine="streaming")
        .item()
    )
    cust_day = txn.group_by("customer_id", "t_dat").agg(pl.len().alias("rows"))
    single_item_days = (
        cust_day.select((pl.col("rows") == 1).mean()).collect(engine="streaming").item()
    )
    n_tx = overall["transactions"].item()
    return {
        "customers": n_customers,
        "articles": articles.height,
        "product_codes": articles["product_code"].n_unique(),
        "transactions": n_tx,
        "customers_with_transactions": per_cust.height,
        "articles_with_transactions": per_art.height,
        "txn_per_customer_median": float(per_cust["n"].median()),
        "txn_per_customer_mean": float(per_cust["n"].mean()),
        "txn_per_customer_max": int(per_cust["n"].max()),
        "txn_per_article_median": float(per_art["n"].median()),
        "txn_per_article_mean": float(per_art["n"].mean()),
        "share_customers_last_week": per_cust.filter(
            pl.col("last") > last - timedelta(days=7)
        ).height
        / n_customers,
        "share_customers_inactive_last_3_months": 1
        - per_cust.filter(pl.col("last") > last - timedelta(days=92)).height / n_customers,
        "share_pairs_single_date": single_date,
        "share_online": overall["share_online"].item(),
        "share_identical_rows": dup_rows / n_tx,
        "share_single_item_days": single_item_days,
        "price_median": overall["price_median"].item(),
        "articles_with_image": n_images,
        "last_week_popularity_map12": last_week_popularity_map(raw_dir),
    } | (
        {"last_week_oracle_map12": last_week_oracle_map(raw_dir)}
        if (raw_dir / SYNTHETIC_DIR).exists()
        else {}
    )


def real_figures() -> dict[str, float]:
    """Published figures of the real data (see hm_reference/README.md)."""
    tx = reference.load("transaction_sample_stats")
    rows = tx["rows_per_customer_that_day"]
    figs = dict(reference.REAL_FIGURES)
    figs["share_single_item_days"] = rows["1"] / sum(rows.values())
    figs["share_identical_rows"] = tx["duplicate_rows_share"]
    figs["price_median"] = tx["price_quantiles"]["0.5"]
    figs["product_codes"] = reference.load("catalogue_marginals")["n_product_codes"]
    figs["last_week_popularity_map12"] = 0.0217  # published leaderboard, close cousin
    return figs


def format_report(figures: dict[str, float], title: str = "world") -> str:
    """A markdown table of the world's figures beside the real ones."""
    real = real_figures()
    lines = [f"| figure | {title} | real H&M |", "|---|---:|---:|"]
    for key, value in figures.items():
        ref = real.get(key)
        lines.append(f"| {key} | {_fmt(value)} | {_fmt(ref) if ref is not None else ''} |")
    lines += [
        "",
        "Real popularity MAP@12: time-decayed last-week popularity on the private leaderboard.",
        "The oracle ranks by the world's true purchase probabilities (20k buyers sampled); on",
        "real data no oracle exists, but the best published solution reached 0.0379.",
        "Real shares of last-week buyers, identical rows and single-item days come from the",
        "published figures and a one-day sample (hm_reference/README.md).",
    ]
    return "\n".join(lines)


def _fmt(v: float) -> str:
    if isinstance(v, int) or (isinstance(v, float) and v.is_integer() and abs(v) >= 100):
        return f"{int(v):,}"
    return f"{v:.4g}"
