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
from typing import NamedTuple

import numpy as np
import polars as pl
from scipy import sparse

from hm_pipeline.arrays import positions
from hm_pipeline.candidates.similarity import recent_purchases
from hm_pipeline.embeddings.common import matrix
from hm_pipeline.lake import Chunked

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


class _Keyed:
    """A table whose `key` is unique, sorted by it once, so that a chunk's rows are looked up
    by position: a left join that keeps the left rows' order without gathering them again."""

    def __init__(self, table: pl.DataFrame, key: str, what: str):
        if table[key].null_count():
            raise ValueError(f"{what}: {table[key].null_count()} rows have no {key}")
        self.table = table.sort(key)
        self.keys = self.table[key].to_numpy()
        dup = np.flatnonzero(self.keys[1:] == self.keys[:-1])
        if len(dup):
            raise ValueError(f"{what}: {key} {self.keys[dup[0]]} appears more than once")
        self.rest = self.table.drop(key)

    def rows_for(self, values: np.ndarray | tuple[np.ndarray, np.ndarray]) -> pl.DataFrame:
        """The other columns for each of `values`, in their order; nulls where it is absent.
        `values` may come as (distinct, inverse) (`_distinct`), to look each value up once."""
        distinct, inverse = values if isinstance(values, tuple) else (values, None)
        pos, found = positions(self.keys, distinct)
        if inverse is not None:
            pos, found = pos[inverse], found[inverse]
        index = pl.Series(pos, dtype=pl.Int64)
        if not found.all():
            index = index.scatter(np.flatnonzero(~found), None)
        return self.rest.select(pl.all().gather(index))


def _pair_features(
    hist: pl.LazyFrame, levels: _Keyed, cutoff: date, keys: pl.DataFrame, key_levels: pl.DataFrame
) -> pl.DataFrame:
    """Customer x article purchase counts and recency at three levels (article, product code,
    product type), one row per row of `keys` (customer_id, article_id), in its order.
    `levels`: each article's product_code and product_type_no; `key_levels`: those of `keys`."""
    days = (pl.lit(cutoff) - pl.col("t_dat").max()).dt.total_days()
    # joined in any order, then put back in the rows' order (polars' maintain_order="left"
    # was the slower of the two on a full-scale chunk, in a one-off timing)
    out = pl.concat([keys, key_levels], how="horizontal").lazy().with_row_index("_row")
    keyed = hist.join(levels.table.lazy(), on="article_id")
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
    return out.sort("_row").drop("_row", *KEYS, "product_code", "product_type_no").collect()


def _distinct(values: np.ndarray, is_sorted: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(distinct values, position of each value among them); runs of equal values when sorted."""
    if not is_sorted:
        return np.unique(values, return_inverse=True)
    new = np.empty(len(values), bool)
    new[:1] = True
    np.not_equal(values[1:], values[:-1], out=new[1:])
    return values[new], np.cumsum(new) - 1


def sorted_by_keys(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` sorted by (customer_id, article_id): as it is when its rows are already in that
    order (the lake's feature tables and unions are written so), else sorted. A sort gathers
    every column again: seconds for a chunk of a feature table."""
    c, a = frame["customer_id"].to_numpy(), frame["article_id"].to_numpy()
    dc, da = np.diff(c), np.diff(a)
    if np.all((dc > 0) | ((dc == 0) & (da > 0))):
        return frame
    return frame.sort(KEYS)


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


class WeekTables(NamedTuple):
    """What every chunk of a week's features is built from: the history before the week, the
    article and customer codes, the windowed customer / article features with their prefixes,
    and the customers' recent purchases."""

    hist: pl.LazyFrame
    art_static: pl.DataFrame
    cust_static: pl.DataFrame
    cfeat: pl.LazyFrame
    afeat: pl.LazyFrame
    recent: pl.LazyFrame  # each customer's recent purchases, for the similarity columns


def _prefixed(table: pl.LazyFrame, key: str, prefix: str) -> pl.LazyFrame:
    """Every column but `key` renamed with `prefix`."""
    return table.rename({c: f"{prefix}{c}" for c in table.collect_schema().names() if c != key})


def week_tables(inp: FeatureInputs) -> WeekTables:
    """The tables `feature_chunks` joins onto each chunk, built once per week."""
    arts = inp.articles
    cust = inp.customers.with_columns(
        (pl.col("age").clip(15, 99) // 5).cast(pl.Int32).alias("age_bin")
    )
    hist = inp.history.filter(pl.col("t_dat") < inp.cutoff)
    return WeekTables(
        hist=hist,
        art_static=arts.select("article_id", *_codes(arts, ARTICLE_CATEGORICALS)),
        cust_static=cust.select(
            "customer_id",
            pl.col("age").cast(pl.Float32).alias("c_age"),
            *_codes(cust, CUSTOMER_CATEGORICALS),
        ),
        cfeat=_prefixed(inp.customer_features, "customer_id", "c_"),
        afeat=_prefixed(inp.article_features, "article_id", "a_"),
        recent=recent_purchases(hist, inp.cutoff, 90, 20, 14.0),
    )


# customer x article columns from the joined customer- and article-level ones
CROSS_FEATURES = [
    (pl.col("c_age") - pl.col("a_median_age_buyers_3m")).alias("x_age_diff"),
    (pl.col("a_latest_price_3m") / pl.col("c_mean_price_1y")).alias("x_price_ratio"),
    (
        pl.col("c_online_share_1y") * pl.col("a_online_share_3m")
        + (1 - pl.col("c_online_share_1y")) * (1 - pl.col("a_online_share_3m"))
    ).alias("x_channel_match"),
]


def with_similarities(
    frame: pl.DataFrame, recent: pl.DataFrame, embeddings: dict[str, pl.DataFrame]
) -> pl.DataFrame:
    """A chunk with its similarity columns added, in the table's types (float32, int32)."""
    sims = _similarities(frame, recent, embeddings)
    return frame.with_columns([pl.Series(k, v) for k, v in sims.items()]).with_columns(
        pl.col(pl.Float64).cast(pl.Float32), pl.col(pl.UInt32).cast(pl.Int32)
    )


def feature_chunks(union: pl.LazyFrame, inp: FeatureInputs, chunk: int = 20_000):
    """The feature table for `union`, one frame per chunk of `chunk` customers (what the
    prediction week scores without ever holding every customer's rows)."""
    cutoff = inp.cutoff
    hist, art_static, cust_static, cfeat, afeat, recent = week_tables(inp)
    # the left joins of each chunk, in this order of columns; each table looked up by position
    lookups = [
        ("customer_id", _Keyed(cfeat.collect(), "customer_id", "customer_features")),
        ("article_id", _Keyed(afeat.collect(), "article_id", "article_features")),
        ("customer_id", _Keyed(_customer_extra(hist, cutoff).collect(), "customer_id", "history")),
        ("article_id", _Keyed(_article_extra(hist, cutoff).collect(), "article_id", "history")),
        ("customer_id", _Keyed(cust_static, "customer_id", "customers")),
        ("article_id", _Keyed(art_static, "article_id", "articles")),
    ]
    levels = _Keyed(
        inp.articles.select("article_id", "product_code", "product_type_no"),
        "article_id",
        "articles",
    )
    recent = recent.collect()
    customers = union.select("customer_id").unique().sort("customer_id").collect()["customer_id"]
    for s in range(0, len(customers), chunk):
        ids = customers[s : s + chunk]
        u = sorted_by_keys(union.filter(pl.col("customer_id").is_in(ids.implode())).collect())
        keys = {
            "customer_id": _distinct(u["customer_id"].to_numpy(), is_sorted=True),
            "article_id": _distinct(u["article_id"].to_numpy()),
        }
        pairs = _pair_features(
            hist.filter(pl.col("customer_id").is_in(ids.implode())),
            levels,
            cutoff,
            u.select(KEYS),
            levels.rows_for(keys["article_id"]),
        )
        frame = pl.concat(
            [u, pairs, *(table.rows_for(keys[key]) for key, table in lookups)], how="horizontal"
        ).with_columns(CROSS_FEATURES)
        yield with_similarities(frame, recent, inp.embeddings)


def feature_table(union: pl.LazyFrame, inp: FeatureInputs, chunk: int = 20_000) -> Chunked:
    """`feature_chunks` as a table for the lake, written chunk by chunk as it is built; its
    metadata (read after the last chunk) gives the number of columns."""
    seen = {"columns": 0}

    def chunks():
        for frame in feature_chunks(union, inp, chunk):
            seen["columns"] = frame.width
            yield frame

    return Chunked(chunks(), schema={}, metadata=lambda: dict(seen))


def build_features(union: pl.LazyFrame, inp: FeatureInputs, chunk: int = 20_000) -> pl.DataFrame:
    """The whole feature table for `union` (built in chunks of `chunk` customers)."""
    parts = list(feature_chunks(union, inp, chunk))
    return pl.concat(parts) if parts else pl.DataFrame()
