"""Heuristic candidate sources: popularity (last week, time-decayed, by age group),
repurchase, other colours of the same product code, items bought together, and customer
similarity (user-kNN). Each is vectorized over polars frames or sparse matrices."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import numpy as np
import polars as pl
from scipy import sparse

from hm_pipeline.candidates.base import CandidateSource, SourceContext, at_least_kth


def _days_before(cutoff: date) -> pl.Expr:
    return (pl.lit(cutoff) - pl.col("t_dat")).dt.total_days()


def _recent(history: pl.LazyFrame, cutoff: date, days: int) -> pl.LazyFrame:
    return history.filter(pl.col("t_dat") >= cutoff - timedelta(days=days))


def _top_per(frame: pl.LazyFrame, group: str, score: str, tie: str, k: int) -> pl.LazyFrame:
    """The k rows with the highest `score` per `group`, ties broken by `tie` (deterministic)."""
    return (
        frame.sort([group, score, tie], descending=[False, True, False])
        .with_columns(pl.int_range(1, pl.len() + 1).over(group).alias("_pos"))
        .filter(pl.col("_pos") <= k)
        .drop("_pos")
    )


class PopularityLastWeek(CandidateSource):
    """The articles bought most in the week before the cutoff, for everyone."""

    name = "popularity_last_week"

    def score(self, history, customers, cutoff, ctx):
        return _recent(history, cutoff, 7).group_by("article_id").agg(pl.len().alias("score"))


class PopularityTimeDecayed(CandidateSource):
    """Sales of the last `days`, each weighted 1 / (1 + days before the cutoff)."""

    name = "popularity_time_decayed"

    def __init__(self, k: int = 200, days: int = 28):
        super().__init__(k)
        self.days = days

    def score(self, history, customers, cutoff, ctx):
        return (
            _recent(history, cutoff, self.days)
            .group_by("article_id")
            .agg((1.0 / (1 + _days_before(cutoff))).sum().alias("score"))
        )


class PopularityByAge(CandidateSource):
    """Last weeks' best sellers among buyers of the customer's age group (5-year bins), then
    the overall best sellers; customers of unknown age get the overall list."""

    name = "popularity_age_group"

    def __init__(self, k: int = 200, days: int = 14, bin_years: int = 5):
        super().__init__(k)
        self.days, self.bin_years = days, bin_years

    def _bin(self) -> pl.Expr:
        return (pl.col("age") // self.bin_years).cast(pl.Int32).fill_null(-1)

    def _ages(self, ctx: SourceContext) -> pl.LazyFrame:
        """customer_id, segment: the age group of each customer in the customer table."""
        return ctx.customers.lazy().select(
            pl.col("customer_id").cast(pl.Int32), self._bin().alias("segment")
        )

    def score(self, history, customers, cutoff, ctx):
        ages = self._ages(ctx).rename({"segment": "age_bin"})
        recent = _recent(history, cutoff, self.days).join(ages, on="customer_id", how="left")
        decay = 1.0 / (1 + _days_before(cutoff))
        by_bin = recent.group_by("age_bin", "article_id").agg(decay.sum().alias("score"))
        overall = recent.group_by("article_id").agg(decay.sum().alias("score"))
        # keep the bins' top k only before fanning out to customers
        by_bin = _top_per(by_bin, "age_bin", "score", "article_id", self.k)
        overall = overall.sort(["score", "article_id"], descending=[True, False]).head(self.k)
        # one list per age group (the customers' segments): the group's list (scores 2..3),
        # then the overall list (0..1) behind it, so that unknown ages (-1) and groups with few
        # recent sales still get k articles
        by_bin = by_bin.with_columns(2 + pl.col("score") / pl.col("score").max().over("age_bin"))
        overall = overall.with_columns(pl.col("score") / pl.col("score").max())
        groups = self.segments(customers, ctx).select("segment").unique()
        known = by_bin.filter(pl.col("age_bin") >= 0).rename({"age_bin": "segment"})
        known = known.join(groups, on="segment", how="semi")
        everyone = groups.join(overall, how="cross")
        cols = ["segment", "article_id", "score"]
        return pl.concat([known.select(cols), everyone.select(cols)])

    def segments(self, customers, ctx):
        """Each customer's age group; -1 for an unknown age (and a customer missing from the
        customer table)."""
        return (
            customers.lazy()
            .select(pl.col("customer_id").cast(pl.Int32))
            .join(self._ages(ctx), on="customer_id", how="left")
            .with_columns(pl.col("segment").fill_null(-1))
        )


class Repurchase(CandidateSource):
    """The customer's own past purchases, each weighted by recency: exp(-days / half_life)."""

    name = "repurchase"

    def __init__(self, k: int = 200, days: int = 365, half_life_days: float = 30.0):
        super().__init__(k)
        self.days, self.half_life = days, half_life_days

    def score(self, history, customers, cutoff, ctx):
        weight = (-_days_before(cutoff) * (np.log(2) / self.half_life)).exp()
        return (
            _recent(history, cutoff, self.days)
            .join(customers.lazy(), on="customer_id", how="semi")
            .group_by("customer_id", "article_id")
            .agg(weight.sum().alias("score"))
        )


class SameProductCode(CandidateSource):
    """Other colours of the product codes a customer bought recently, ranked by the recency
    of that purchase times the article's recent popularity."""

    name = "same_product_code"

    def __init__(self, k: int = 200, days: int = 180, half_life_days: float = 30.0):
        super().__init__(k)
        self.days, self.half_life = days, half_life_days

    def score(self, history, customers, cutoff, ctx):
        codes = ctx.articles.lazy().select(
            pl.col("article_id").cast(pl.Int32), pl.col("product_code").cast(pl.Int32)
        )
        weight = (-_days_before(cutoff) * (np.log(2) / self.half_life)).exp()
        bought = (
            _recent(history, cutoff, self.days)
            .join(customers.lazy(), on="customer_id", how="semi")
            .join(codes, on="article_id")
        )
        code_weight = bought.group_by("customer_id", "product_code").agg(weight.sum().alias("w"))
        popularity = (
            _recent(history, cutoff, 28).group_by("article_id").agg(pl.len().alias("sales"))
        )
        siblings = codes.join(popularity, on="article_id", how="left").with_columns(
            pl.col("sales").fill_null(0)
        )
        return (
            code_weight.join(siblings, on="product_code")
            .join(
                bought.select("customer_id", "article_id").unique(),
                on=["customer_id", "article_id"],
                how="anti",
            )
            .select(
                "customer_id",
                "article_id",
                (pl.col("w") * (1 + pl.col("sales")).log()).alias("score"),
            )
        )


class BoughtTogether(CandidateSource):
    """Articles bought in the same customer-week as the customer's recent purchases:
    P(b | a) from co-purchases over recent weeks, summed over the customer's recent items."""

    name = "bought_together"

    def __init__(
        self, k: int = 200, pair_days: int = 56, customer_days: int = 28, per_item: int = 20
    ):
        super().__init__(k)
        self.pair_days, self.customer_days, self.per_item = pair_days, customer_days, per_item

    def score(self, history, customers, cutoff, ctx):
        baskets = (
            _recent(history, cutoff, self.pair_days)
            .select("customer_id", "article_id", (_days_before(cutoff) // 7).alias("week"))
            .unique()
        )
        pairs = (
            baskets.join(baskets, on=["customer_id", "week"], suffix="_b")
            .filter(pl.col("article_id") != pl.col("article_id_b"))
            .group_by("article_id", "article_id_b")
            .agg(pl.len().alias("n"))
        )
        support = baskets.group_by("article_id").agg(pl.len().alias("n_a"))
        cond = _top_per(
            pairs.join(support, on="article_id").select(
                "article_id", "article_id_b", (pl.col("n") / pl.col("n_a")).alias("p")
            ),
            "article_id",
            "p",
            "article_id_b",
            self.per_item,
        )
        weight = 1.0 / (1 + _days_before(cutoff) / 7)
        recent = (
            _recent(history, cutoff, self.customer_days)
            .join(customers.lazy(), on="customer_id", how="semi")
            .group_by("customer_id", "article_id")
            .agg(weight.max().alias("w"))
        )
        return (
            recent.join(cond, on="article_id")
            .group_by("customer_id", pl.col("article_id_b").alias("article_id"))
            .agg((pl.col("w") * pl.col("p")).sum().alias("score"))
        )


class CustomerSimilarity(CandidateSource):
    """User-kNN: cosine similarity of IDF-weighted purchase vectors over recent weeks; a
    customer's candidates are what their nearest neighbours bought, weighted by similarity.
    Sparse matrices, computed in chunks of customers."""

    name = "customer_similarity"

    def __init__(self, k: int = 200, days: int = 84, neighbours: int = 50, chunk: int = 500):
        super().__init__(k)
        self.days, self.neighbours, self.chunk = days, neighbours, chunk

    def score(self, history, customers, cutoff, ctx):
        inter = (
            _recent(history, cutoff, self.days)
            .select("customer_id", "article_id")
            .unique()
            .sort("customer_id", "article_id")
            .collect(engine="streaming")
        )
        empty = pl.DataFrame(
            schema={"customer_id": pl.Int32, "article_id": pl.Int32, "score": pl.Float32}
        )
        cust_ids, c_idx = np.unique(inter["customer_id"].to_numpy(), return_inverse=True)
        art_ids, a_idx = np.unique(inter["article_id"].to_numpy(), return_inverse=True)
        wanted = customers["customer_id"].to_numpy()
        targets = np.flatnonzero(np.isin(cust_ids, wanted))
        if len(targets) == 0:
            return empty
        n_c, n_a = len(cust_ids), len(art_ids)
        idf = np.log(n_c / np.bincount(a_idx, minlength=n_a)).astype(np.float32) + 1e-3
        x = sparse.csr_matrix((idf[a_idx], (c_idx, a_idx)), shape=(n_c, n_a))
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
        x = (sparse.diags((1 / np.maximum(norms, 1e-12)).astype(np.float32)) @ x).tocsr()
        xt = x.T.tocsr()
        bought = sparse.csr_matrix(
            (np.ones(len(c_idx), np.float32), (c_idx, a_idx)), shape=(n_c, n_a)
        )

        def chunk(rows: np.ndarray) -> pl.DataFrame:
            sim = (x[rows] @ xt).tocoo()
            # each customer's most similar others (ties: the lower index), themselves excluded
            nb = (
                pl.DataFrame({"r": sim.row, "n": sim.col, "s": sim.data})
                .filter(pl.col("n") != rows[sim.row])
                .filter(at_least_kth("s", "r", self.neighbours))
                .select(
                    pl.all()
                    .top_k_by(["s", "n"], self.neighbours, reverse=[False, True])
                    .over("r", mapping_strategy="explode")
                )
            )
            neigh = sparse.csr_matrix(
                (nb["s"].to_numpy(), (nb["r"].to_numpy(), nb["n"].to_numpy())),
                shape=(len(rows), n_c),
            )
            scores = (neigh @ bought).tocoo()
            return (
                pl.DataFrame(
                    {
                        "customer_id": cust_ids[rows][scores.row].astype(np.int32),
                        "article_id": art_ids[scores.col].astype(np.int32),
                        "score": scores.data.astype(np.float32),
                    }
                )
                .filter(at_least_kth("score", "customer_id", self.k))
                .select(
                    # the k best, ties by article id as `generate` breaks them
                    pl.all()
                    .top_k_by(["score", "article_id"], self.k, reverse=[False, True])
                    .over("customer_id", mapping_strategy="explode")
                )
            )

        # two chunks at a time: scipy's products release the GIL
        with ThreadPoolExecutor(2) as pool:
            parts = list(
                pool.map(
                    chunk, [targets[s : s + self.chunk] for s in range(0, len(targets), self.chunk)]
                )
            )
        return pl.concat(parts) if parts else empty


HEURISTIC_SOURCES: list[type[CandidateSource]] = [
    PopularityLastWeek,
    PopularityTimeDecayed,
    PopularityByAge,
    Repurchase,
    SameProductCode,
    BoughtTogether,
    CustomerSimilarity,
]
