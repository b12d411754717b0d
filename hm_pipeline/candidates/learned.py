"""Learned candidate sources: models trained per week on the history before it.

torch and the models are imported by the methods that use them: the asset definitions import
this module, and so does every step process, most of which train or load no model."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
from scipy import sparse

from hm_pipeline.candidates.base import CandidateSource, SourceContext
from hm_pipeline.models.common import IdIndex, point_to, resolve_model_folder, save_model
from hm_pipeline.models.configs import MultVAEConfig, NeuMFConfig, TwoTowerConfig
from hm_pipeline.negatives import sample_negatives

if TYPE_CHECKING:
    import torch


def recent_pool(
    history: pl.LazyFrame, cutoff: date, days: int, size: int | None = None
) -> np.ndarray:
    """The `size` articles sold most in the last `days` (all of them when `size` is None): the
    pool a model scores (scoring every article for every customer would not fit the budget at
    full scale)."""
    return (
        history.filter(pl.col("t_dat") >= cutoff - timedelta(days=days))
        .group_by("article_id")
        .agg(pl.len().alias("n"))
        .sort(["n", "article_id"], descending=[True, False])
        .head(size if size is not None else np.iinfo(np.int32).max)
        .collect()["article_id"]
        .to_numpy()
    )


SCORES_SCHEMA = {"customer_id": pl.Int32, "article_id": pl.Int32, "score": pl.Float32}


class LearnedSource(CandidateSource):
    """A source that trains a torch model per week. After `generate` (or `restore`), `model`,
    `losses` and the id indices are set, the candidate asset stores them with `settings()`, and
    `pair_scores` scores any (customer, article) pairs (the sampled evaluation needs it)."""

    config_type: type

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

    @classmethod
    def restore(cls, folder: Path, history: pl.LazyFrame, cutoff: date, ctx: SourceContext):
        """The source as trained for `cutoff`, from its model-store folder (state_dict, config,
        ids) and the history before `cutoff` (for inputs that are data, not weights)."""
        import torch

        folder = resolve_model_folder(folder)
        settings = json.loads((Path(folder) / "config.json").read_text())
        raw = settings.pop("model")
        config = cls.config_type(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
        )
        params = {k: v for k, v in settings.items() if k not in ("source", "week", "losses")}
        src = cls(config=config, **params)
        ids = np.load(Path(folder) / "ids.npz")
        src.users, src.items = IdIndex(ids["users"]), IdIndex(ids["items"])
        src.losses = settings.get("losses", [])
        src.model = src.build(history.filter(pl.col("t_dat") < cutoff), cutoff, ctx)
        src.model.load_state_dict(torch.load(Path(folder) / "model.pt", weights_only=True))
        src.model.eval()
        return src

    def build(self, history: pl.LazyFrame, cutoff: date, ctx: SourceContext) -> torch.nn.Module:
        """An untrained model of the stored shape, with the data inputs `pair_scores` and `rank`
        need taken from the history before `cutoff` (which may be later than the week the model
        was trained for: the inputs are data, the weights stay)."""
        raise NotImplementedError

    def score(self, history, customers, cutoff, ctx: SourceContext):
        """Train on the history before `cutoff` (unless a model was restored), then rank."""
        if self.model is None and not self.fit(history, cutoff, ctx):
            return pl.DataFrame(schema=SCORES_SCHEMA)
        return self.rank(history, customers, cutoff, ctx)

    def fit(self, history: pl.LazyFrame, cutoff: date, ctx: SourceContext) -> bool:
        """Train the model on the history before `cutoff`; False when there is nothing to learn
        from. Sets `model`, `losses`, the id indices and the data inputs of `rank`."""
        raise NotImplementedError

    def rank(
        self, history: pl.LazyFrame, customers: pl.DataFrame, cutoff: date, ctx: SourceContext
    ) -> pl.DataFrame:
        """Scores (customer_id, article_id, score) of the model's best articles per customer."""
        raise NotImplementedError

    def pair_scores(self, customers: np.ndarray, articles: np.ndarray) -> np.ndarray:
        """Scores (n, m) of customers[r] for articles[r, :]; -inf where the model cannot score."""
        raise NotImplementedError


def _gather(full: torch.Tensor, cols: np.ndarray) -> np.ndarray:
    """full[r, cols[r, j]] with -inf where cols < 0."""
    import torch

    out = torch.gather(full, 1, torch.as_tensor(np.maximum(cols, 0))).numpy().astype(np.float64)
    return np.where(cols >= 0, out, -np.inf)


class NeuMFSource(LearnedSource):
    """NeuMF trained on the weeks before the cutoff with sampled negatives (the strategy is a
    setting), scoring a pool of recently sold articles for every known customer."""

    name = "neumf"
    config_type = NeuMFConfig

    def __init__(
        self,
        k: int = 200,
        strategy: str = "weekly_random",
        n_negatives: int = 5,
        window_days: int = 56,
        pool_days: int = 14,
        pool_size: int = 1000,
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

    def build(self, history, cutoff, ctx):
        from hm_pipeline.models.neumf import NeuMF

        return NeuMF(len(self.users), len(self.items), self.config)

    def pair_scores(self, customers, articles):
        import torch

        u = self.users.lookup(customers)
        i = self.items.lookup(articles.ravel()).reshape(articles.shape)
        uu = torch.as_tensor(np.repeat(np.maximum(u, 0), articles.shape[1]))
        with torch.no_grad():
            s = (
                torch.cat(
                    [
                        self.model(
                            uu[a : a + 65536],
                            torch.as_tensor(np.maximum(i, 0).ravel()[a : a + 65536]),
                        )
                        for a in range(0, len(uu), 65536)
                    ]
                )
                if len(uu)
                else torch.zeros(0)
            )
        s = s.numpy().astype(np.float64).reshape(articles.shape)
        return np.where((i >= 0) & (u[:, None] >= 0), s, -np.inf)

    def fit(self, history, cutoff, ctx):
        from hm_pipeline.models.neumf import train_neumf

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
            return False
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
        return True

    def rank(self, history, customers, cutoff, ctx):
        import torch

        empty = pl.DataFrame(schema=SCORES_SCHEMA)
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
    config_type = MultVAEConfig

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
        self._x: sparse.csr_matrix | None = None

    def _matrix(
        self, history: pl.LazyFrame, cutoff: date, items: IdIndex | None = None
    ) -> pl.DataFrame:
        """Distinct (customer, article) pairs of the window, on its `max_items` best sellers (or
        on `items`, the articles a trained model knows)."""
        inter = (
            history.filter(pl.col("t_dat") >= cutoff - timedelta(days=self.window_days))
            .select("customer_id", "article_id")
            .unique()
            .collect()
        )
        if items is not None:
            known = pl.DataFrame({"article_id": items.ids}).cast({"article_id": pl.Int32})
            return inter.join(known, on="article_id", how="semi")
        top_items = (
            inter.group_by("article_id")
            .len()
            .sort(["len", "article_id"], descending=[True, False])
            .head(self.max_items)
        )
        return inter.join(top_items.select("article_id"), on="article_id", how="semi")

    def _set_x(self, inter: pl.DataFrame) -> None:
        u = self.users.lookup(inter["customer_id"].to_numpy())
        i = self.items.lookup(inter["article_id"].to_numpy())
        self._x = sparse.csr_matrix(
            (np.ones(len(u), np.float32), (u, i)), shape=(len(self.users), len(self.items))
        )

    def build(self, history, cutoff, ctx):
        from hm_pipeline.models.multvae import MultVAE

        # the encoder reads a customer's window, so every customer of the window at `cutoff`
        # is scored (folded in), on the articles the model was trained on
        inter = self._matrix(history, cutoff, self.items)
        self.users = IdIndex.of(inter["customer_id"])
        self._set_x(inter)
        return MultVAE(len(self.items), self.config)

    def pair_scores(self, customers, articles):
        import torch

        rows = self.users.lookup(customers)
        cols = self.items.lookup(articles.ravel()).reshape(articles.shape)
        with torch.no_grad():
            logits, _, _ = self.model(
                torch.from_numpy(np.asarray(self._x[np.maximum(rows, 0)].todense(), np.float32))
            )
        out = _gather(logits, cols)
        return np.where(rows[:, None] >= 0, out, -np.inf)

    def fit(self, history, cutoff, ctx):
        from hm_pipeline.models.multvae import train_multvae

        inter = self._matrix(history, cutoff)
        if inter.height == 0:
            return False
        self.users = IdIndex.of(inter["customer_id"])
        self.items = IdIndex.of(inter["article_id"])
        self._set_x(inter)
        x = self._x
        rng = np.random.default_rng(ctx.seed)
        train_rows = np.arange(x.shape[0])
        if len(train_rows) > self.max_train_customers:
            train_rows = np.sort(rng.choice(train_rows, self.max_train_customers, replace=False))
        self.model, self.losses = train_multvae(x[train_rows], self.config)
        return True

    def rank(self, history, customers, cutoff, ctx):
        from hm_pipeline.models.multvae import top_k

        empty = pl.DataFrame(schema=SCORES_SCHEMA)
        x = self._x
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


class TwoTowerSource(LearnedSource):
    """Two-tower retrieval (customer: recent purchases + age; article: id, attributes, recent
    sales), sampled softmax over the weeks before the cutoff, dot-product top-k over the
    articles sold in the `pool_days` before the cutoff (None: the whole catalogue) for every
    requested customer (those without history get their age's vector)."""

    name = "twotower"
    config_type = TwoTowerConfig

    def __init__(
        self, k: int = 200, config: TwoTowerConfig | None = None, pool_days: int | None = 14
    ):
        super().__init__(k, config or TwoTowerConfig())
        # a serving setting, not a training one: a stored model serves any pool
        self.pool_days = pool_days

    def _inputs(self, history: pl.LazyFrame, cutoff: date, ctx: SourceContext) -> None:
        from hm_pipeline.models import twotower as tt

        self._table = tt.ArticleTable.of(ctx.articles)
        self._history, self._cutoff, self._customers = history, cutoff, ctx.customers
        self._pop = tt.popularity_features(history, self._table.index, cutoff)

    def _customer_vectors(self, wanted: np.ndarray) -> torch.Tensor:
        """Vectors of sorted, distinct customer ids from their state at the cutoff."""
        from hm_pipeline.models import twotower as tt

        bags = tt.customer_bags(self._history, self._table.index, wanted, self._cutoff, self.config)
        ages = tt.age_codes(self._customers, wanted)
        return tt.customer_vectors(self.model, self._table, bags, ages)

    def build(self, history, cutoff, ctx):
        from hm_pipeline.models import twotower as tt

        self._inputs(history, cutoff, ctx)
        return tt.TwoTower(len(self._table.index), self._table.cardinalities, self.config)

    def pair_scores(self, customers, articles):
        import torch

        from hm_pipeline.models import twotower as tt

        uniq, inverse = np.unique(customers, return_inverse=True)
        users = self._customer_vectors(uniq)[torch.as_tensor(inverse)]
        items = tt.article_vectors(self.model, self._table, self._pop)
        cols = self._table.index.lookup(articles.ravel()).reshape(articles.shape)
        return _gather(users @ items.T, cols)

    def fit(self, history, cutoff, ctx):
        from hm_pipeline.models import twotower as tt

        self._inputs(history, cutoff, ctx)
        data = tt.training_set(history, ctx.customers, self._table, cutoff, self.config)
        if len(data.item) == 0:
            return False
        self.items = self._table.index
        self.model, self.losses = tt.train_twotower(data, self._table, self.config)
        return True

    def pool(self, history: pl.LazyFrame, cutoff: date) -> np.ndarray:
        """Indices (into the catalogue) of the articles retrieval ranks."""
        n = len(self._table.index)
        if self.pool_days is None:
            return np.arange(n)
        idx = self._table.index.lookup(recent_pool(history, cutoff, self.pool_days))
        return np.sort(idx[idx >= 0])

    def rank(self, history, customers, cutoff, ctx):
        import torch

        from hm_pipeline.models import twotower as tt

        table = self._table
        wanted = customers["customer_id"].to_numpy()
        self.users = IdIndex(wanted)
        bags = tt.customer_bags(self._history, table.index, wanted, self._cutoff, self.config)
        ages = tt.age_codes(self._customers, wanted)
        # a customer without recent purchases is encoded from the age alone, so each age is
        # retrieved once for all of them (at full scale over half the customers)
        cold = np.diff(bags.indptr) == 0
        key = np.where(cold, ages, -1 - np.arange(len(wanted)))
        _, first, group = np.unique(key, return_index=True, return_inverse=True)
        pool = self.pool(history, cutoff)
        if len(pool) == 0:
            return pl.DataFrame(schema=SCORES_SCHEMA)
        scores, idx = tt.retrieve(
            tt.customer_vectors(self.model, table, bags[first], ages[first]),
            tt.article_vectors(self.model, table, self._pop)[torch.as_tensor(pool)],
            self.k,
        )
        scores, idx = scores[group.ravel()], pool[idx[group.ravel()]]
        kk = scores.shape[1]
        return pl.DataFrame(
            {
                "customer_id": np.repeat(wanted, kk).astype(np.int32),
                "article_id": table.index.ids[idx.ravel()].astype(np.int32),
                "score": scores.ravel(),
            }
        )


LEARNED_SOURCES: list[type[LearnedSource]] = [NeuMFSource, MultVAESource, TwoTowerSource]


def training_week(week: date, every: int, origin: date) -> date:
    """The week whose model serves `week` when learned sources retrain every `every` weeks:
    the latest week <= `week` a multiple of `every` weeks from `origin` (itself when every=1)."""
    if every < 1:
        raise ValueError(f"retrain_every_weeks must be >= 1, got {every}")
    return week - timedelta(weeks=((week - origin).days // 7) % every)


def store_model(folder: Path, src: LearnedSource, week: date) -> Path:
    """The trained source's weights, settings and ids in its week's model-store folder."""
    return save_model(
        folder,
        src.model,
        {"source": src.name, "week": str(week), **src.settings()},
        # the two-tower has no customer index of its own (it encodes any customer's history)
        users=src.users.ids if src.users is not None else np.zeros(0, np.int32),
        items=src.items.ids,
    )


def _same_settings(folder: Path, src: LearnedSource) -> bool:
    """Whether `folder` holds a model trained with `src`'s settings."""
    path = Path(folder) / "config.json"
    if not path.exists() or not (Path(folder) / "model.pt").exists():
        return False
    stored = json.loads(path.read_text())
    wanted = json.loads(json.dumps({**src.settings(), "source": src.name}, default=str))
    return all(stored.get(k) == v for k, v in wanted.items() if k != "losses")


def source_for_week(
    cls: type[LearnedSource],
    k: int,
    week: date,
    trained: date,
    folder: Path,
    history: pl.LazyFrame,
    ctx: SourceContext,
) -> tuple[LearnedSource, date, bool]:
    """The source that ranks `week`'s candidates, the week its model is (or will be) trained
    for, and whether it was trained just now.

    With `trained == week` it is untrained (`generate` trains it on the history before the
    week). Otherwise it serves with the model trained for the earlier week `trained`, restored
    from `folder` (that week's model-store folder) when one with the same settings is there,
    else trained now on the history before `trained` and stored there. Its data inputs (the
    customers' recent purchases, article sales) are read at `week`, so nothing from `week` or
    later is seen and nothing but the weights is stale."""
    src = cls(k=k)
    if trained == week:
        return src, week, False
    fresh = False
    if not _same_settings(folder, src):
        if not src.fit(history.filter(pl.col("t_dat") < trained), trained, ctx):
            return cls(k=k), week, False  # nothing to learn from then: train for the week
        store_model(folder, src, trained)
        fresh = True
    restored = cls.restore(folder, history, week, ctx)
    restored.k = k
    return restored, trained, fresh


def keep_model(src: LearnedSource, week: date, served_by: date, folder_of) -> Path:
    """After `week`'s candidates: store the model in `week`'s model-store folder when it was
    trained for `week`, else point that folder at the model of `served_by` (which served it).
    `folder_of(week_str)` is the model-store folder of a week."""
    folder = folder_of(str(week))
    if served_by == week:
        return store_model(folder, src, week)
    return point_to(folder, folder_of(str(served_by)), str(served_by))
