"""Two-tower retrieval: a customer tower over the customer's recent purchases and age, an
article tower over the article's id, attributes and recent sales, trained with a sampled
softmax (in-batch positives plus uniformly drawn articles, log-q corrected), and retrieval by
chunked dot product + top-k (over the articles the caller passes: the source ranks the recently
sold ones).

Training examples are (customer, article) purchases of the `train_weeks` weeks before the
cutoff; each example sees the customer's history and the articles' sales *before its own week*,
so the model learns the same mapping it is later asked for at the cutoff.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl
import torch
from scipy import sparse
from torch import nn

from hm_pipeline.models.common import IdIndex, pick_device, seeded_generator
from hm_pipeline.models.configs import TwoTowerConfig

# categorical article attributes the article tower (and, through it, the customer tower) embed
ATTRIBUTES = (
    "product_code",
    "product_type_no",
    "graphical_appearance_no",
    "colour_group_code",
    "perceived_colour_master_id",
    "department_no",
    "index_code",
    "section_no",
    "garment_group_no",
)
N_POP = 4  # recent-sales features per article and cut


@dataclass
class ArticleTable:
    """Dense codes of the catalogue's attributes and its recent sales at several cuts."""

    index: IdIndex
    codes: np.ndarray  # (n_items, len(ATTRIBUTES)) int64, 0 = unknown
    cardinalities: list[int]

    @classmethod
    def of(cls, articles: pl.DataFrame) -> ArticleTable:
        """Codes for every catalogue article, in article-id order."""
        arts = articles.sort("article_id")
        cols, cards = [], []
        for name in ATTRIBUTES:
            values = arts[name]
            codes = values.rank("dense").fill_null(0).cast(pl.Int64).to_numpy()
            cols.append(codes)
            cards.append(int(codes.max(initial=0)) + 1)
        return cls(IdIndex(arts["article_id"].to_numpy()), np.stack(cols, axis=1), cards)


def popularity_features(history: pl.LazyFrame, items: IdIndex, cut: date) -> np.ndarray:
    """(n_items, N_POP) float32 from sales strictly before `cut`: log sales in the last 1, 2 and
    4 weeks, and whether the article sold at all in the last 13 weeks."""
    days = pl.col("t_dat")
    sales = (
        history.filter((days < cut) & (days >= cut - timedelta(days=91)))
        .group_by("article_id")
        .agg(
            (days >= cut - timedelta(days=7)).sum().alias("w1"),
            (days >= cut - timedelta(days=14)).sum().alias("w2"),
            (days >= cut - timedelta(days=28)).sum().alias("w4"),
            pl.len().alias("w13"),
        )
        .collect()
    )
    out = np.zeros((len(items), N_POP), np.float32)
    idx = items.lookup(sales["article_id"].to_numpy())
    ok = idx >= 0
    for j, name in enumerate(["w1", "w2", "w4"]):
        out[idx[ok], j] = np.log1p(sales[name].to_numpy()[ok]) / 4.0
    out[idx[ok], 3] = (sales["w13"].to_numpy()[ok] > 0).astype(np.float32)
    return out


def customer_bags(
    history: pl.LazyFrame,
    items: IdIndex,
    customers: np.ndarray,
    cut: date,
    cfg: TwoTowerConfig,
) -> sparse.csr_matrix:
    """Row r: the articles customers[r] bought in the `history_days` before `cut`, weighted by
    recency (halving every `history_halflife_days`), normalised to sum 1 (empty rows stay 0)."""
    recent = (
        history.filter(
            (pl.col("t_dat") < cut) & (pl.col("t_dat") >= cut - timedelta(days=cfg.history_days))
        )
        .join(pl.LazyFrame({"customer_id": customers.astype(np.int32)}), on="customer_id")
        .group_by("customer_id", "article_id")
        .agg((pl.lit(cut) - pl.col("t_dat").max()).dt.total_days().alias("age_days"))
        .collect()
    )
    rows = np.searchsorted(customers, recent["customer_id"].to_numpy())
    cols = items.lookup(recent["article_id"].to_numpy())
    ok = cols >= 0
    w = np.exp2(-recent["age_days"].to_numpy()[ok] / cfg.history_halflife_days).astype(np.float32)
    bags = sparse.csr_matrix((w, (rows[ok], cols[ok])), shape=(len(customers), len(items)))
    totals = np.asarray(bags.sum(axis=1)).ravel()
    scale = np.divide(1.0, totals, out=np.zeros_like(totals), where=totals > 0)
    return sparse.csr_matrix(sparse.diags(scale.astype(np.float32)) @ bags)


def age_codes(customers: pl.DataFrame, ids: np.ndarray) -> np.ndarray:
    """Five-year age bins (0 = unknown) of `ids`, in their order."""
    ages = (
        pl.DataFrame({"customer_id": ids.astype(np.int32)})
        .join(customers.select("customer_id", "age"), on="customer_id", how="left")
        .sort("customer_id")["age"]
    )
    bins = (ages.clip(15, 99) // 5 - 2).fill_null(0).fill_nan(0).cast(pl.Int64).to_numpy()
    return np.clip(bins, 0, 17)


class TwoTower(nn.Module):
    """score(customer, article) = <customer tower, article tower>; the article tower's last
    coordinate is a popularity bias and the customer tower's is 1, so retrieval stays a pure
    dot product."""

    def __init__(self, n_items: int, cardinalities: list[int], cfg: TwoTowerConfig):
        super().__init__()
        d = cfg.dim
        self.item_id = nn.Embedding(n_items, d)
        self.attrs = nn.ModuleList(nn.Embedding(c, d) for c in cardinalities)
        self.age = nn.Embedding(18, d)
        self.item_mlp = nn.Sequential(
            nn.Linear(d + N_POP, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, d)
        )
        self.item_bias = nn.Sequential(nn.Linear(d + N_POP, 32), nn.ReLU(), nn.Linear(32, 1))
        self.user_mlp = nn.Sequential(
            nn.Linear(2 * d, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, d)
        )
        for emb in [self.item_id, *self.attrs, self.age]:
            nn.init.normal_(emb.weight, std=0.05)

    def item_base(self, items: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """Id + attribute embeddings (shared by both towers)."""
        out = self.item_id(items)
        c = codes[items]
        for j, emb in enumerate(self.attrs):
            out = out + emb(c[:, j])
        return out

    def items(self, items: torch.Tensor, codes: torch.Tensor, pop: torch.Tensor) -> torch.Tensor:
        """(n, dim + 1) article vectors; `pop` holds the articles' sales features."""
        return self.items_from_base(self.item_base(items, codes), pop)

    def items_from_base(self, base: torch.Tensor, pop: torch.Tensor) -> torch.Tensor:
        """`items` from the articles' `item_base` (computed once when several sales cuts score
        the same articles)."""
        x = torch.cat([base, pop], dim=1)
        return torch.cat([self.item_mlp(x), self.item_bias(x)], dim=1)

    def users(
        self,
        bag_items: torch.Tensor,
        bag_rows: torch.Tensor,
        bag_weights: torch.Tensor,
        n: int,
        ages: torch.Tensor,
        codes: torch.Tensor,
    ) -> torch.Tensor:
        """(n, dim + 1) customer vectors from weighted bags of recent purchases (COO form)."""
        base = self.item_base(bag_items, codes) * bag_weights[:, None]
        pooled = torch.zeros((n, base.shape[1]), dtype=base.dtype, device=base.device)
        pooled.index_add_(0, bag_rows, base)
        u = self.user_mlp(torch.cat([pooled, self.age(ages)], dim=1))
        return torch.cat([u, torch.ones((n, 1), dtype=u.dtype, device=u.device)], dim=1)


def _coo(bags: sparse.csr_matrix, rows: np.ndarray, device) -> tuple[torch.Tensor, ...]:
    sub = bags[rows].tocoo()
    return (
        torch.as_tensor(sub.col, dtype=torch.long, device=device),
        torch.as_tensor(sub.row, dtype=torch.long, device=device),
        torch.as_tensor(sub.data, dtype=torch.float32, device=device),
    )


@dataclass
class TrainingSet:
    """Examples and the inputs they point into (one bag matrix and one sales table per cut)."""

    bag_row: np.ndarray  # row of `bags` holding the example customer's state at its cut
    item: np.ndarray  # article index bought
    cut: np.ndarray  # which cut (0 = most recent training week)
    bags: sparse.csr_matrix
    ages: np.ndarray  # per bag row
    pop: np.ndarray  # (n_cuts, n_items, N_POP)


def training_set(
    history: pl.LazyFrame,
    customers: pl.DataFrame,
    table: ArticleTable,
    cutoff: date,
    cfg: TwoTowerConfig,
) -> TrainingSet:
    """Purchases of each of the `train_weeks` weeks before `cutoff` with the state before that
    week; the most recent weeks first when `max_train_examples` cuts them."""
    bag_parts, item_parts, row_parts, cut_parts, age_parts, pops = [], [], [], [], [], []
    offset, total = 0, 0
    for j in range(cfg.train_weeks):
        cut = cutoff - timedelta(days=7 * (j + 1))
        week = (
            history.filter((pl.col("t_dat") >= cut) & (pl.col("t_dat") < cut + timedelta(days=7)))
            .select("customer_id", "article_id")
            .unique()
            .sort("customer_id", "article_id")
            .collect()
        )
        week = week.head(max(cfg.max_train_examples - total, 0))
        if week.height == 0:
            break
        who = week["customer_id"].unique().sort().to_numpy()
        bag_parts.append(customer_bags(history, table.index, who, cut, cfg))
        age_parts.append(age_codes(customers, who))
        row_parts.append(offset + np.searchsorted(who, week["customer_id"].to_numpy()))
        item_parts.append(table.index.lookup(week["article_id"].to_numpy()))
        cut_parts.append(np.full(week.height, j, np.int64))
        pops.append(popularity_features(history, table.index, cut))
        offset += len(who)
        total += week.height
    if not item_parts:
        return TrainingSet(
            *(np.zeros(0, np.int64),) * 3,
            sparse.csr_matrix((0, len(table.index)), dtype=np.float32),
            np.zeros(0, np.int64),
            np.zeros((0, len(table.index), N_POP), np.float32),
        )
    item = np.concatenate(item_parts)
    keep = item >= 0
    return TrainingSet(
        np.concatenate(row_parts)[keep],
        item[keep],
        np.concatenate(cut_parts)[keep],
        sparse.vstack(bag_parts).tocsr(),
        np.concatenate(age_parts),
        np.stack(pops),
    )


def train_twotower(
    data: TrainingSet, table: ArticleTable, cfg: TwoTowerConfig
) -> tuple[TwoTower, list[float]]:
    """Sampled-softmax training; returns the model (CPU, eval mode) and each epoch's mean loss."""
    device = pick_device()
    gen = seeded_generator(cfg.seed)
    n_items = len(table.index)
    model = TwoTower(n_items, table.cardinalities, cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    codes = torch.as_tensor(table.codes, device=device)
    pop = torch.as_tensor(data.pop, device=device)
    ages = torch.as_tensor(data.ages, device=device)
    # probability that an article is among a batch's positives (log-q correction)
    freq = np.bincount(data.item, minlength=n_items) / max(len(data.item), 1)
    history = []
    model.train()
    for _ in range(cfg.epochs):
        order = torch.randperm(len(data.item), generator=gen).numpy()
        total = 0.0
        for s in range(0, len(order), cfg.batch_size):
            idx = order[s : s + cfg.batch_size]
            idx = idx[np.argsort(data.cut[idx], kind="stable")]  # rows grouped by cut
            b = len(idx)
            pos = data.item[idx]
            drawn = torch.randint(0, n_items, (cfg.random_negatives,), generator=gen).numpy()
            cand, inverse = np.unique(np.concatenate([pos, drawn]), return_inverse=True)
            incl = 1 - (1 - freq[cand]) ** b * (1 - 1 / n_items) ** cfg.random_negatives
            cand_t = torch.as_tensor(cand, device=device)
            bi, br, bw = _coo(data.bags, data.bag_row[idx], device)
            u = model.users(bi, br, bw, b, ages[data.bag_row[idx]], codes)
            # each example scores the candidates with the article sales of its own cut
            cuts, starts = np.unique(data.cut[idx], return_index=True)
            bounds = [*starts[1:], b]
            base = model.item_base(cand_t, codes)  # once: a dense gradient per embedding call
            logits = torch.cat(
                [
                    u[lo:hi] @ model.items_from_base(base, pop[c, cand_t]).T
                    for c, lo, hi in zip(cuts, starts, bounds, strict=True)
                ]
            )
            logits = logits - torch.as_tensor(np.log(incl), dtype=torch.float32, device=device)
            target = torch.as_tensor(inverse[:b], device=device)
            loss = nn.functional.cross_entropy(logits, target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * b
        history.append(total / max(len(data.item), 1))
    return model.cpu().eval(), history


@torch.no_grad()
def article_vectors(model: TwoTower, table: ArticleTable, pop: np.ndarray) -> torch.Tensor:
    """Every catalogue article's vector with the sales features `pop`."""
    items = torch.arange(len(table.index))
    return model.items(items, torch.as_tensor(table.codes), torch.as_tensor(pop))


@torch.no_grad()
def customer_vectors(
    model: TwoTower, table: ArticleTable, bags: sparse.csr_matrix, ages: np.ndarray
) -> torch.Tensor:
    """Customer vectors for the rows of `bags`, in chunks."""
    codes = torch.as_tensor(table.codes)
    out = []
    for s in range(0, bags.shape[0], 8192):
        rows = np.arange(s, min(s + 8192, bags.shape[0]))
        bi, br, bw = _coo(bags, rows, "cpu")
        out.append(model.users(bi, br, bw, len(rows), torch.as_tensor(ages[rows]), codes))
    return torch.cat(out) if out else torch.zeros((0, model.item_id.embedding_dim + 1))


@torch.no_grad()
def retrieve(
    users: torch.Tensor, items: torch.Tensor, k: int, chunk: int = 2048
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k item indices and scores of every user over all items: chunked matmul + top-k."""
    k = min(k, items.shape[0])
    scores, idx = [], []
    for s in range(0, users.shape[0], chunk):
        top = torch.topk(users[s : s + chunk] @ items.T, k, dim=1)
        scores.append(top.values.numpy())
        idx.append(top.indices.numpy())
    if not scores:
        return np.zeros((0, k), np.float32), np.zeros((0, k), np.int64)
    return np.concatenate(scores), np.concatenate(idx)
