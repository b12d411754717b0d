"""Weekly evaluation: every method on the same customers (those who buy in the week)."""

from __future__ import annotations

import polars as pl

from hm_pipeline.metrics import cut, hit_rate_of, hits, map_of, ndcg_of, recall_of

RECALL_KS = (12, 50, 100, 200)
EVALUATION_COLUMNS = [
    "method",
    "n_customers",
    "map_at_12",
    "hit_rate_at_12",
    "ndcg_at_12",
    *[f"recall_at_{k}" for k in RECALL_KS],
    "coverage_at_12",
]


def blend(first: pl.DataFrame, second: pl.DataFrame, k: int = 12) -> pl.DataFrame:
    """`first`'s ranking, then `second`'s articles not already there, cut at k per customer
    (e.g. "repurchase, then popular"). Both in the candidate schema; customers of either."""
    both = pl.concat(
        [
            first.select("customer_id", "article_id", pl.col("rank").cast(pl.Int64)),
            second.select(
                "customer_id",
                "article_id",
                (pl.col("rank").cast(pl.Int64) + 1_000_000).alias("rank"),
            ),
        ]
    )
    return (
        both.sort("customer_id", "rank")
        .unique(["customer_id", "article_id"], keep="first", maintain_order=True)
        .with_columns(
            pl.int_range(1, pl.len() + 1, dtype=pl.Int32).over("customer_id").alias("rank")
        )
        .filter(pl.col("rank") <= k)
        .with_columns((-pl.col("rank")).cast(pl.Float32).alias("score"))
        .select("customer_id", "article_id", "score", "rank")
    )


def evaluate_method(name: str, ranked: pl.DataFrame, labels: pl.DataFrame, n_articles: int) -> dict:
    """One row of the evaluation table. `ranked` has customer_id, article_id, rank; `labels`
    the week's purchases (customer_id, article_id). Averages are over the buying customers.
    The lists are matched with the purchases twice, not once per metric: the top 12 for the
    @12 metrics, the whole list for every recall@k (at full scale a method's list is ~19M rows)."""
    top12 = ranked.filter(pl.col("rank") <= 12)
    at12 = hits(top12, labels, 12)
    row = {
        "method": name,
        "n_customers": labels["customer_id"].n_unique(),
        "map_at_12": map_of(at12, 12),
        "hit_rate_at_12": hit_rate_of(at12),
        "ndcg_at_12": ndcg_of(at12, 12),
    }
    max_rank = max(ranked["rank"].max() or 0, 12)
    every = hits(ranked, labels, max(k for k in RECALL_KS if k <= max_rank))
    for k in RECALL_KS:
        row[f"recall_at_{k}"] = recall_of(cut(every, k)) if k <= max_rank else None
    row["coverage_at_12"] = top12["article_id"].n_unique() / max(n_articles, 1)
    return row


def evaluation_table(
    methods: dict[str, pl.DataFrame],
    labels: pl.DataFrame,
    n_articles: int,
    subsets: dict[str, pl.Series] | None = None,
) -> pl.DataFrame:
    """The evaluation table, one row per method, best MAP@12 first. A method in `subsets`
    ranked only those customers (the oracle's sample) and is evaluated on their purchases."""
    subsets = subsets or {}
    rows = []
    for name, ranked in methods.items():
        truth = labels
        if name in subsets:
            truth = labels.join(subsets[name].to_frame("customer_id"), on="customer_id", how="semi")
        rows.append(evaluate_method(name, ranked, truth, n_articles))
    return (
        pl.DataFrame(
            rows,
            schema={c: (pl.String if c == "method" else pl.Float64) for c in EVALUATION_COLUMNS},
        )
        .with_columns(pl.col("n_customers").cast(pl.Int64))
        .sort("map_at_12", descending=True, nulls_last=True)
    )


def sample_buyers(labels: pl.DataFrame, n: int, seed: int = 0) -> pl.Series:
    """A fixed random sample of n of the week's buyers, sorted (all of them when there are
    fewer than n, or with n = 0)."""
    buyers = labels["customer_id"].unique().sort()
    if 0 < n < len(buyers):
        buyers = buyers.sample(n, seed=seed).sort()
    return buyers


def to_submission(ranked: pl.DataFrame, customer_ids: pl.DataFrame, k: int = 12) -> pl.DataFrame:
    """The competition's format: customer_id (64 hex), prediction (k ten-digit article ids)."""
    return (
        ranked.filter(pl.col("rank") <= k)
        .sort("customer_id", "rank")
        .join(customer_ids, on="customer_id", how="left", maintain_order="left")
        .group_by("customer_hex", maintain_order=True)
        .agg(pl.col("article_id").cast(pl.String).str.zfill(10).str.join(" ").alias("prediction"))
        .rename({"customer_hex": "customer_id"})
    )


def markdown_table(df: pl.DataFrame, digits: int = 4) -> str:
    """A markdown rendering of a small frame (for Dagster metadata and the README)."""
    cols = df.columns
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.iter_rows():
        cells = [
            f"{v:.{digits}f}" if isinstance(v, float) else ("" if v is None else str(v))
            for v in row
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def oracle_ranking(
    raw_dir,
    transactions: pl.LazyFrame,
    customer_ids: pl.DataFrame,
    week,
    customers: pl.Series,
    k: int = 200,
) -> pl.DataFrame:
    """The synthetic world's oracle as a ranking of the lake's integer ids (customer_id,
    article_id, score, rank), for `customers` (integer ids) in `week`."""
    from hm_pipeline.synth.oracle import oracle_top_k

    kaggle = transactions.join(
        customer_ids.lazy(), on="customer_id", how="left", maintain_order="left"
    ).select(
        "t_dat",
        pl.col("customer_hex").alias("customer_id"),
        "article_id",
        "price",
        "sales_channel_id",
    )
    hexes = pl.DataFrame({"customer_id": customers.cast(pl.Int32)}).join(
        customer_ids, on="customer_id", how="left"
    )["customer_hex"]
    top = oracle_top_k(raw_dir, kaggle, week, hexes, k=k)
    return (
        top.rename({"customer_id": "customer_hex", "probability": "score"})
        .join(customer_ids, on="customer_hex", how="left")
        .select(
            pl.col("customer_id").cast(pl.Int32),
            pl.col("article_id").cast(pl.Int32),
            pl.col("score").cast(pl.Float32),
            pl.col("rank").cast(pl.Int32),
        )
    )


def summarize(by_week: pl.DataFrame) -> pl.DataFrame:
    """Mean of every metric over the weeks, per method, plus the worst week's MAP@12."""
    metrics = [c for c in EVALUATION_COLUMNS if c not in ("method", "n_customers")]
    return (
        by_week.group_by("method")
        .agg(
            pl.len().alias("weeks"),
            *[pl.col(c).mean() for c in metrics],
            pl.col("map_at_12").min().alias("min_map_at_12"),
        )
        .sort("map_at_12", descending=True)
    )


def weekly_map_table(reports_dir) -> str:
    """Markdown: MAP@12, hit rate@12 and NDCG@12 of every method per validation week (three
    tables, each with the mean over the weeks), from the evaluation_<week>.csv files in
    `reports_dir`; methods ordered by mean MAP@12."""
    from pathlib import Path

    files = sorted(Path(reports_dir).glob("evaluation_????-??-??.csv"))
    if not files:
        raise FileNotFoundError(f"no evaluation_<week>.csv in {reports_dir}: run the weeks first")
    by_week = pl.concat(
        [
            pl.read_csv(f).with_columns(pl.lit(f.stem.removeprefix("evaluation_")).alias("week"))
            for f in files
        ],
        how="diagonal_relaxed",
    )
    order = (
        by_week.group_by("method")
        .agg(pl.col("map_at_12").mean().alias("_m"))
        .sort("_m", descending=True)
        .with_row_index("_o")
    )
    parts = []
    for col, title in [
        ("map_at_12", "MAP@12"),
        ("hit_rate_at_12", "hit rate@12"),
        ("ndcg_at_12", "NDCG@12"),
    ]:
        wide = by_week.pivot(on="week", index="method", values=col, sort_columns=True)
        mean = by_week.group_by("method").agg(pl.col(col).mean().alias("mean"))
        table = (
            wide.join(mean, on="method")
            .join(order.select("method", "_o"), on="method")
            .sort("_o")
            .drop("_o")
        )
        parts.append(
            f"{title} by validation week (rows: methods; the oracle is the ceiling):\n\n"
            + markdown_table(table)
        )
    return "\n\n".join(parts)


def without_history(labels: pl.DataFrame, history: pl.LazyFrame, week) -> pl.DataFrame:
    """The rows of `labels` whose customer bought nothing before `week` (cold-start buyers)."""
    before = history.filter(pl.col("t_dat") < week).select("customer_id").unique().collect()
    return labels.join(before, on="customer_id", how="anti")


def weekly_methods(
    candidates: dict[str, pl.DataFrame], oracle: pl.DataFrame | None = None
) -> dict[str, pl.DataFrame]:
    """Every ranking the weekly report compares: each source's candidates, the "repurchase,
    then popular" blend, and the oracle when there is one."""
    methods = dict(candidates)
    methods["repurchase_then_popular"] = blend(
        methods["repurchase"], methods["popularity_last_week"]
    )
    if oracle is not None:
        methods["oracle"] = oracle
    return methods
