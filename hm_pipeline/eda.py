"""Exploratory figures of the data: what a data scientist looks at first.

Each figure is computed with polars over the whole history and drawn with matplotlib; the
summary table holds the numbers behind them."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from hm_pipeline import plots


def summary(
    transactions: pl.LazyFrame, customers: pl.LazyFrame, articles: pl.LazyFrame
) -> pl.DataFrame:
    """Headline figures: sizes, the seed's questions (bulk buyers, rare buyers, best and worst
    sellers) and the first things to look at (channel, baskets, repurchase, activity)."""
    per_customer = transactions.group_by("customer_id").agg(pl.len().alias("n"))
    per_article = transactions.group_by("article_id").agg(pl.len().alias("n"))
    days = transactions.group_by("customer_id", "t_dat").agg(pl.len().alias("rows"))
    pairs = transactions.group_by("customer_id", "article_id").agg(
        pl.col("t_dat").n_unique().alias("d")
    )
    n_customers = customers.select(pl.len()).collect().item()
    n_articles = articles.select(pl.len()).collect().item()
    pc = per_customer.select(
        pl.len().alias("buyers"),
        pl.col("n").median().alias("median"),
        pl.col("n").mean().alias("mean"),
        (pl.col("n") <= 2).mean().alias("share_le_2"),
        pl.col("n").quantile(0.999).alias("p999"),
        pl.col("n").max().alias("max"),
    ).collect()
    pa = per_article.select(
        pl.len().alias("sold"),
        pl.col("n").median().alias("median"),
        (pl.col("n") <= 5).sum().alias("le_5"),
        pl.col("n").max().alias("max"),
    ).collect()
    tx = transactions.select(
        pl.len().alias("rows"),
        (pl.col("sales_channel_id") == 2).mean().alias("online"),
        pl.col("t_dat").min().alias("first"),
        pl.col("t_dat").max().alias("last"),
    ).collect()
    rows = [
        ("customers", n_customers),
        ("articles", n_articles),
        ("transactions", tx["rows"][0]),
        ("first day", str(tx["first"][0])),
        ("last day", str(tx["last"][0])),
        ("customers who bought", pc["buyers"][0]),
        ("transactions per buyer: median", pc["median"][0]),
        ("transactions per buyer: mean", round(pc["mean"][0], 2)),
        ("buyers with <= 2 transactions (share)", round(pc["share_le_2"][0], 4)),
        ("bulk buyers: 99.9th percentile of transactions", pc["p999"][0]),
        ("bulk buyers: most transactions of one customer", pc["max"][0]),
        ("articles sold at least once", pa["sold"][0]),
        ("articles sold <= 5 times", pa["le_5"][0]),
        ("best seller: transactions", pa["max"][0]),
        ("sales per article: median", pa["median"][0]),
        ("online share", round(tx["online"][0], 4)),
        (
            "rows per customer-day: mean",
            round(days.select(pl.col("rows").mean()).collect().item(), 3),
        ),
        (
            "pairs bought on several days (share)",
            round(pairs.select((pl.col("d") > 1).mean()).collect().item(), 4),
        ),
    ]
    return pl.DataFrame({"figure": [r[0] for r in rows], "value": [str(r[1]) for r in rows]})


def sellers(transactions: pl.LazyFrame, articles: pl.LazyFrame, n: int = 10) -> pl.DataFrame:
    """The n most-selling and the n least-selling articles (among those sold at all), named."""
    counts = transactions.group_by("article_id").agg(pl.len().alias("transactions"))
    named = counts.join(
        articles.select("article_id", "prod_name", "product_type_name", "colour_group_name"),
        on="article_id",
        how="left",
    )
    best = named.sort(["transactions", "article_id"], descending=[True, False]).head(n)
    worst = named.sort(["transactions", "article_id"]).head(n)
    return (
        pl.concat(
            [
                best.with_columns(pl.lit("most sold").alias("which")),
                worst.with_columns(pl.lit("least sold").alias("which")),
            ]
        )
        .select("which", pl.all().exclude("which"))
        .collect()
    )


def figures(
    transactions: pl.LazyFrame, customers: pl.LazyFrame, articles: pl.LazyFrame, out_dir: Path
) -> dict[str, Path]:
    """Draw every EDA figure into `out_dir`; returns title -> PNG path."""
    plt = plots.pyplot()
    out: dict[str, Path] = {}
    weekly = (
        transactions.with_columns(
            (pl.col("t_dat") - pl.duration(days=(pl.col("t_dat").dt.weekday() - 3) % 7)).alias(
                "week"
            )
        )
        .group_by("week")
        .agg(
            pl.len().alias("rows"),
            pl.col("customer_id").n_unique().alias("customers"),
            (pl.col("sales_channel_id") == 2).mean().alias("online"),
        )
        .sort("week")
        .collect()
    )
    n_customers = customers.select(pl.len()).collect().item()

    fig, ax = plt.subplots(figsize=(9, 3.5))
    ax.plot(weekly["week"], weekly["rows"])
    ax.set_title("Weekly sales (transaction rows)")
    out["Weekly sales"] = plots.save(fig, out_dir / "weekly_sales.png")

    fig, ax = plt.subplots(figsize=(9, 3.5))
    ax.plot(weekly["week"], weekly["customers"] / n_customers)
    ax.set_title("Share of customers active per week")
    out["Active customers per week"] = plots.save(fig, out_dir / "active_share.png")

    fig, ax = plt.subplots(figsize=(9, 3.5))
    ax.plot(weekly["week"], weekly["online"])
    ax.set_ylim(0, 1)
    ax.set_title("Online share of rows per week (sales_channel_id = 2)")
    out["Channel split"] = plots.save(fig, out_dir / "channel_split.png")

    ages = customers.select("age").drop_nulls().collect()["age"]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(ages.to_numpy(), bins=range(15, 100))
    ax.set_title("Customer age")
    out["Age distribution"] = plots.save(fig, out_dir / "age.png")

    per_customer = transactions.group_by("customer_id").agg(pl.len().alias("n")).collect()["n"]
    per_article = transactions.group_by("article_id").agg(pl.len().alias("n")).collect()["n"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    axes[0].hist(per_customer.to_numpy(), bins=100, log=True)
    axes[0].set_title("Transactions per customer (bulk buyers on the right)")
    axes[1].hist(per_article.to_numpy(), bins=100, log=True)
    axes[1].set_title("Transactions per article (least and most selling)")
    out["Customers and articles by volume"] = plots.save(fig, out_dir / "volume.png")

    baskets = (
        transactions.group_by("customer_id", "t_dat").agg(pl.len().alias("rows")).collect()["rows"]
    )
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(baskets.clip(upper_bound=30).to_numpy(), bins=range(1, 32))
    ax.set_title("Basket size (rows per customer-day, capped at 30)")
    out["Basket sizes"] = plots.save(fig, out_dir / "baskets.png")

    repurchase = (
        transactions.select("customer_id", "article_id", "t_dat")
        .unique()
        .sort("customer_id", "article_id", "t_dat")
        .with_columns(
            (pl.col("t_dat") - pl.col("t_dat").shift(1).over("customer_id", "article_id"))
            .dt.total_days()
            .alias("gap")
        )
        .drop_nulls("gap")
        .collect()["gap"]
    )
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(repurchase.clip(upper_bound=365).to_numpy(), bins=52)
    ax.set_title("Days until the same customer buys the same article again")
    out["Repurchase gaps"] = plots.save(fig, out_dir / "repurchase.png")
    return out


def write_report(
    transactions: pl.LazyFrame, customers: pl.LazyFrame, articles: pl.LazyFrame, out_dir: Path
) -> tuple[pl.DataFrame, str]:
    """Draw the figures into `out_dir`, write `out_dir/summary.md` (images linked), and return
    the summary table and a markdown report with the images inlined (for the Dagster UI)."""
    from hm_pipeline.evaluation import markdown_table

    table = summary(transactions, customers, articles)
    best_worst = markdown_table(sellers(transactions, articles))
    figs = figures(transactions, customers, articles, out_dir)
    head = [markdown_table(table), "### Most and least sold articles", best_worst]
    linked = [f"### {t}\n\n![{t}]({p.name})" for t, p in figs.items()]
    inlined = [f"### {t}\n\n{plots.markdown_image(p, t)}" for t, p in figs.items()]
    (out_dir / "summary.md").write_text("\n\n".join(head + linked) + "\n")
    return table, "\n\n".join(head + inlined)
