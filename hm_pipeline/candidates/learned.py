"""Learned candidate sources: models trained per week on the history before it."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import torch
from scipy import sparse

from hm_pipeline.candidates.base import CandidateSource, SourceContext
from hm_pipeline.models.common import IdIndex
from hm_pipeline.models.multvae import MultVAEConfig, top_k, train_multvae
from hm_pipeline.models.neumf import NeuMFConfig, train_neumf
from hm_pipeline.negatives import sample_negatives


def recent_pool(history: pl.LazyFrame, cutoff: date, days: int, size: int) -> np.ndarray:
    """The `size` articles sold most in the last `days`: the pool a model scores (scoring every
    article for every customer would not fit the budget at full scale)."""
    return (
        history.filter(pl.col("t_dat") >= cutoff - timedelta(days=days))
        .group_by("article_id")
        .agg(pl.len().alias("n"))
        .sort(["n", "article_id"], descending=[True, False])
        .head(size)
        .collect()["article_id"]
        .to_numpy()
    )


SCORES_SCHEMA = {"customer_id": pl.Int32, "article_id": pl.Int32, "score": pl.Float32}


class LearnedSource(CandidateSource):
    """A source that trains a torch model per week. After `generate`, `model`, `losses` and the
    id indices are set, and the candidate asset stores them with `settings()`."""

    def __init__(self, k: int, config, **params):
        super().__init__(k)
        self.config = config
        self.params = params  # also attributes, so subclasses read self.window_days etc.
        for name, value in params.items():
            setattr(self, name, value)
        self.model = None
        self.losses: list[float] = []
        self.users: IdIndex | None = None
        self.items: IdIndex | None = None

    def settings(self) -> dict:
        """What the model was trained with, for the model store."""
        return {**self.params, "model": self.config.to_dict(), "losses": self.losses}


class NeuMFSource(LearnedSource):
    """NeuMF trained on the weeks before the cutoff with sampled negatives (the strategy is a
    setting), scoring a pool of recently sold articles for every known customer."""

    name = "neumf"

    def __init__(
        self,
        k: int = 200,
        strategy: str = "weekly_random",
        n_negatives: int = 5,
        window_days: int = 56,
        pool_days: int = 14,
        pool_size: int = 2000,
        config: NeuMFConfig | None = None,
    ):
        super().__init__(
            k,
            config or NeuMFConfig(),
            strategy=strategy,
            n_negatives=n_negatives,
            window_days=window_days,
            pool_days=pool_days,
            pool_size=pool_size,
        )

    def score(self, history, customers, cutoff, ctx: SourceContext):
        empty = pl.DataFrame(schema=SCORES_SCHEMA)
        pairs = sample_negatives(
            history,
            ctx.articles,
            cutoff,
            self.strategy,
            self.n_negatives,
            ctx.seed,
            window_days=self.window_days,
        )
        if pairs.height == 0:
            return empty
        self.users = IdIndex.of(pairs["customer_id"])
        self.items = IdIndex.of(pairs["article_id"])
        self.model, self.losses = train_neumf(
            self.users.lookup(pairs["customer_id"].to_numpy()),
            self.items.lookup(pairs["article_id"].to_numpy()),
            pairs["label"].to_numpy(),
            len(self.users),
            len(self.items),
            self.config,
        )
        pool = recent_pool(history, cutoff, self.pool_days, self.pool_size)
        pool_idx = self.items.lookup(pool)
        pool, pool_idx = pool[pool_idx >= 0], pool_idx[pool_idx >= 0]
        wanted = customers["customer_id"].to_numpy()
        user_idx = self.users.lookup(wanted)
        known = user_idx >= 0
        if not known.any() or len(pool) == 0:
            return empty
        k = min(self.k, len(pool))
        parts = []
        users_t = torch.as_tensor(user_idx[known], dtype=torch.long)
        pool_t = torch.as_tensor(pool_idx, dtype=torch.long)
        ids = wanted[known]
        for s in range(0, len(users_t), 1024):  # chunks of customers
            logits = self.model.score_pool(users_t[s : s + 1024], pool_t)
            top = torch.topk(logits, k, dim=1)
            parts.append(
                pl.DataFrame(
                    {
                        "customer_id": np.repeat(ids[s : s + 1024], k).astype(np.int32),
                        "article_id": pool[top.indices.numpy().ravel()].astype(np.int32),
                        "score": top.values.numpy().ravel(),
                    }
                )
            )
        return pl.concat(parts)


class MultVAESource(LearnedSource):
    """Mult-VAE over the customer x article matrix of the weeks before the cutoff (the most
    bought articles; training customers subsampled at full scale), ranking by decoder logits."""

    name = "multvae"

    def __init__(
        self,
        k: int = 200,
        window_days: int = 56,
        max_items: int = 3000,
        max_train_customers: int = 200_000,
        config: MultVAEConfig | None = None,
    ):
        super().__init__(
            k,
            config or MultVAEConfig(),
            window_days=window_days,
            max_items=max_items,
            max_train_customers=max_train_customers,
        )

    def score(self, history, customers, cutoff, ctx: SourceContext):
        empty = pl.DataFrame(schema=SCORES_SCHEMA)
        inter = (
            history.filter(pl.col("t_dat") >= cutoff - timedelta(days=self.window_days))
            .select("customer_id", "article_id")
            .unique()
            .collect()
        )
        top_items = (
            inter.group_by("article_id")
            .len()
            .sort(["len", "article_id"], descending=[True, False])
            .head(self.max_items)
        )
        inter = inter.join(top_items.select("article_id"), on="article_id", how="semi")
        if inter.height == 0:
            return empty
        self.users = IdIndex.of(inter["customer_id"])
        self.items = IdIndex.of(inter["article_id"])
        u = self.users.lookup(inter["customer_id"].to_numpy())
        i = self.items.lookup(inter["article_id"].to_numpy())
        x = sparse.csr_matrix(
            (np.ones(len(u), np.float32), (u, i)), shape=(len(self.users), len(self.items))
        )
        rng = np.random.default_rng(ctx.seed)
        train_rows = np.arange(x.shape[0])
        if len(train_rows) > self.max_train_customers:
            train_rows = np.sort(rng.choice(train_rows, self.max_train_customers, replace=False))
        self.model, self.losses = train_multvae(x[train_rows], self.config)
        wanted = customers["customer_id"].to_numpy()
        rows = self.users.lookup(wanted)
        known = rows >= 0
        if not known.any():
            return empty
        scores, items = top_k(self.model, x, rows[known], self.k)
        kk = scores.shape[1]
        return pl.DataFrame(
            {
                "customer_id": np.repeat(wanted[known], kk).astype(np.int32),
                "article_id": self.items.ids[items.ravel()].astype(np.int32),
                "score": scores.ravel(),
            }
        )


LEARNED_SOURCES: list[type[CandidateSource]] = [NeuMFSource, MultVAESource]
