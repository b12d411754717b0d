"""The one feature table both rankers read: for each (customer, article) of a week's candidate
union, built only from the history before the week.

Columns: the union's per-source score/rank, n_sources, best_rank; the windowed customer and
article features; customer x article features (times bought this article, its product code,
its product type, and days since; age against the article's median buyer; price against the
customer's usual spend; channel match); the article's cosine similarity to the customer's
recent purchases under each embedding; categorical codes of the article and customer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl
from scipy import sparse

from hm_pipeline.arrays import positions
from hm_pipeline.candidates.similarity import recent_purchases
from hm_pipeline.embeddings.common import matrix

KEYS = ["customer_id", "article_id"]
ARTICLE_CATEGORICALS = [
    "product_type_no",
    "product_group_name",
    "graphical_appearance_no",
    "colour_group_code",
    "perceived_colour_master_id",
    "department_no",
    "index_code",
    "section_no",
    "garment_group_no",
]
CUSTOMER_CATEGORICALS = ["club_member_status", "fashion_news_frequency", "age_bin"]
CATEGORICALS = [f"cat_{c}" for c in [*ARTICLE_CATEGORICALS, *CUSTOMER_CATEGORICALS]]


def feature_columns(table: pl.DataFrame | pl.LazyFrame) -> tuple[list[str], list[str]]:
    """(dense, categorical) feature columns of a feature table: everything but the keys and
    the label; categoricals are the cat_* integer codes."""
    names = table.collect_schema().names()
    cats = [c for c in names if c.startswith("cat_")]
    dense = [c for c in names if c not in (*KEYS, "label", *cats)]
    return dense, cats


def _codes(df: pl.DataFrame, cols: list[str]) -> list[pl.Expr]:
    """Dense integer codes 1..n of categorical columns over the whole table (the catalogue or
    every customer, so the same value has the same code in every week); 0 = null."""
    return [
        pl.col(c).cast(pl.String).rank("dense").fill_null(0).cast(pl.Int32).alias(f"cat_{c}")
        for c in cols
        if c in df.columns
    ]


@dataclass
class FeatureInputs:
    """Everything a week's features need, from the history before `cutoff`."""

    cutoff: date
    history: pl.LazyFrame
    articles: pl.DataFrame
    customers: pl.DataFrame
    customer_features: pl.LazyFrame
    article_features: pl.LazyFrame
    embeddings: dict[str, pl.DataFrame]


def _pair_features(hist: pl.LazyFrame, articles: pl.DataFrame, cutoff: date, union: pl.LazyFrame):
    """Customer x article purchase counts and recency at three levels (article, product code,
    product type), only for the union's pairs."""
    days = (pl.lit(cutoff) - pl.col("t_dat").max()).dt.total_days()
    keyed = hist.join(
        articles.lazy().select("article_id", "product_code", "product_type_no"), on="article_id"
    )
    out = union.select(KEYS).join(
        articles.lazy().select("article_id", "product_code", "product_type_no"),
        on="article_id",
        how="left",
    )
    for level, name in [
        ("article_id", "article"),
        ("product_code", "code"),
        ("product_type_no", "type"),
    ]:
        agg = keyed.group_by("customer_id", level).agg(
            pl.len().cast(pl.Int32).alias(f"ca_{name}_count"),
            days.cast(pl.Int32).alias(f"ca_{name}_days_since"),
        )
        out = out.join(agg, on=["customer_id", level], how="left")
    return out.drop("product_code", "product_type_no")


def _customer_extra(hist: pl.LazyFrame, cutoff: date) -> pl.LazyFrame:
    year = hist.filter(pl.col("t_dat") >= cutoff - timedelta(days=364))
    return year.group_by("customer_id").agg(
        (pl.col("sales_channel_id") == 2).mean().cast(pl.Float32).alias("c_online_share_1y"),
        pl.col("price").mean().cast(pl.Float32).alias("c_mean_price_1y"),
    )


def _article_extra(hist: pl.LazyFrame, cutoff: date) -> pl.LazyFrame:
    q = hist.filter(pl.col("t_dat") >= cutoff - timedelta(days=91))
    return q.group_by("article_id").agg(
        (pl.col("sales_channel_id") == 2).mean().cast(pl.Float32).alias("a_online_share_3m")
    )


def _similarities(
    frame: pl.DataFrame,
    recent: pl.DataFrame,
    embeddings: dict[str, pl.DataFrame],
    block: int = 2048,
    dtype=np.float32,
) -> dict[str, np.ndarray]:
    """Cosine of each row's article to its customer's recency-weighted recent purchases, per
    embedding (null-free: 0 when the customer has no recent purchase). Rows are multiplied
    `block` at a time so the gathered vectors stay in the CPU's cache; the profiles are summed
    in `dtype` (float32, as the embeddings: float64 weights made scipy copy the whole
    catalogue's matrix to float64 for every chunk and embedding). Both measured by
    benchmarks/feature-similarities.md."""
    custs = frame["customer_id"].unique().sort().to_numpy()
    rows_c = np.searchsorted(custs, frame["customer_id"].to_numpy())
    rec = recent.filter(pl.col("customer_id").is_in(custs.tolist()))
    out = {}
    articles = frame["article_id"].to_numpy()
    ids_seen, a_rows, absent = None, None, None
    for name, table in embeddings.items():
        ids, x = matrix(table)
        if ids_seen is None or not np.array_equal(ids, ids_seen):  # the same catalogue: once
            ids_seen = ids
            a_rows, present = positions(ids, articles)
            absent = ~present  # no vector: 0, never a neighbouring article's
        a_rec, ok = positions(ids, rec["article_id"].to_numpy())
        w = sparse.csr_matrix(
            (
                rec["weight"].to_numpy().astype(dtype)[ok],
                (np.searchsorted(custs, rec["customer_id"].to_numpy()[ok]), a_rec[ok]),
            ),
            shape=(len(custs), len(ids)),
        )
        prof = np.asarray(w @ x.astype(dtype, copy=False), dtype=np.float32)
        norms = np.linalg.norm(prof, axis=1, keepdims=True)
        prof /= np.where(norms > 0, norms, 1)
        sims = np.empty(frame.height, np.float32)
        for s in range(0, frame.height, block):
            sims[s : s + block] = np.einsum(
                "ij,ij->i", prof[rows_c[s : s + block]], x[a_rows[s : s + block]]
            )
        sims[absent] = 0.0
        out[f"sim_{name.removesuffix('_embeddings')}"] = sims
    return out


def feature_chunks(union: pl.LazyFrame, inp: FeatureInputs, chunk: int = 20_000):
    """The feature table for `union`, one frame per chunk of `chunk` customers (what the
    prediction week scores without ever holding every customer's rows)."""
    cutoff = inp.cutoff
    hist = inp.history.filter(pl.col("t_dat") < cutoff)
    arts = inp.articles
    art_static = arts.select("article_id", *_codes(arts, ARTICLE_CATEGORICALS))
    cust = inp.customers.with_columns(
        (pl.col("age").clip(15, 99) // 5).cast(pl.Int32).alias("age_bin")
    )
    cust_static = cust.select(
        "customer_id",
        pl.col("age").cast(pl.Float32).alias("c_age"),
        *_codes(cust, CUSTOMER_CATEGORICALS),
    )
    cfeat = inp.customer_features.rename(
        {c: f"c_{c}" for c in inp.customer_features.collect_schema().names() if c != "customer_id"}
    )
    afeat = inp.article_features.rename(
        {c: f"a_{c}" for c in inp.article_features.collect_schema().names() if c != "article_id"}
    )
    cextra = _customer_extra(hist, cutoff).collect()
    aextra = _article_extra(hist, cutoff).collect()
    recent = recent_purchases(hist, cutoff, 90, 20, 14.0).collect()
    customers = union.select("customer_id").unique().sort("customer_id").collect()["customer_id"]
    for s in range(0, len(customers), chunk):
        ids = customers[s : s + chunk]
        u = union.filter(pl.col("customer_id").is_in(ids.implode()))
        frame = (
            u.join(
                _pair_features(
                    hist.filter(pl.col("customer_id").is_in(ids.implode())), arts, cutoff, u
                ),
                on=KEYS,
                how="left",
            )
            .join(cfeat, on="customer_id", how="left")
            .join(afeat, on="article_id", how="left")
            .join(cextra.lazy(), on="customer_id", how="left")
            .join(aextra.lazy(), on="article_id", how="left")
            .join(cust_static.lazy(), on="customer_id", how="left")
            .join(art_static.lazy(), on="article_id", how="left")
            .with_columns(
                (pl.col("c_age") - pl.col("a_median_age_buyers_3m")).alias("x_age_diff"),
                (pl.col("a_latest_price_3m") / pl.col("c_mean_price_1y")).alias("x_price_ratio"),
                (
                    pl.col("c_online_share_1y") * pl.col("a_online_share_3m")
                    + (1 - pl.col("c_online_share_1y")) * (1 - pl.col("a_online_share_3m"))
                ).alias("x_channel_match"),
            )
            .sort(KEYS)
            .collect()
        )
        sims = _similarities(frame, recent, inp.embeddings)
        yield frame.with_columns([pl.Series(k, v) for k, v in sims.items()]).with_columns(
            pl.col(pl.Float64).cast(pl.Float32), pl.col(pl.UInt32).cast(pl.Int32)
        )


def build_features(union: pl.LazyFrame, inp: FeatureInputs, chunk: int = 20_000) -> pl.DataFrame:
    """The whole feature table for `union` (built in chunks of `chunk` customers)."""
    parts = list(feature_chunks(union, inp, chunk))
    return pl.concat(parts) if parts else pl.DataFrame()
