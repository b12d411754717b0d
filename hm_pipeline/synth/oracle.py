"""The oracle: each customer's true purchase probabilities for a week, from the world's state at
the start of that week (its latent parameters and the purchases made before it).

It mirrors the item process in `behaviour`: P(item = a) for one item of a customer's basket,
turned into P(buy a in week W) = 1 - exp(-E[items in W] * P(item = a)). The purchases that
feed repurchase terms are the customer's last `history_slots` purchases before W, read back
from the transactions (identical adjacent rows are one item bought in several units).
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
from scipy import sparse

from hm_pipeline.schema import SYNTHETIC_DIR
from hm_pipeline.synth.behaviour import (
    DAY0,
    WeekSampler,
    recency_slot_probabilities,
    volume,
    week_of,
)
from hm_pipeline.synth.catalogue import Catalogue
from hm_pipeline.synth.config import Behaviour
from hm_pipeline.synth.world import META_FILE, STATE_FILE


@dataclass
class World:
    """The saved latent state of a generated world."""

    arrays: dict[str, np.ndarray]
    meta: dict
    _companions: sparse.csr_matrix | None = None

    @classmethod
    def load(cls, raw_dir: Path) -> World:
        """Load `raw_dir/_synthetic/`; a clear error when the folder holds no synthetic world."""
        state = Path(raw_dir) / SYNTHETIC_DIR
        if not (state / STATE_FILE).exists():
            raise FileNotFoundError(
                f"{state / STATE_FILE} not found: the oracle exists only for synthetic worlds "
                "made by `hm-pipeline synth`"
            )
        with np.load(state / STATE_FILE) as z:
            arrays = {k: z[k] for k in z.files}
        return cls(arrays=arrays, meta=json.loads((state / META_FILE).read_text()))

    @property
    def behaviour(self) -> Behaviour:
        """The behaviour parameters the world was generated with."""
        return Behaviour(**self.meta["scale"]["behaviour"])

    def catalogue(self) -> Catalogue:
        """The catalogue's latent arrays (its `articles` frame is not needed and left empty)."""
        fields = {k[4:]: v for k, v in self.arrays.items() if k.startswith("cat_")}
        return Catalogue(articles=pl.DataFrame(), **fields)

    def companion_matrix(self) -> sparse.csr_matrix:
        """(article x article) matrix with 0.5 from each article to each of its two partners."""
        if self._companions is None:
            comp = self.arrays["cat_companions"]
            n = len(comp)
            self._companions = sparse.csr_matrix(
                (np.full(2 * n, 0.5, dtype=np.float32), (np.repeat(np.arange(n), 2), comp.ravel())),
                shape=(n, n),
            )
        return self._companions

    def cust(self, name: str) -> np.ndarray:
        """One customer latent array."""
        return self.arrays[f"cust_{name}"]


class _SegmentsView:
    def __init__(self, world: World):
        self.affinity = world.arrays["seg_affinity"]
        self.segment = world.arrays["seg_segment"]


def recent_purchases(
    transactions: pl.LazyFrame,
    customer_hex: pl.Series,
    article_ids: np.ndarray,
    before: date,
    slots: int,
) -> np.ndarray:
    """(len(customer_hex), slots) article rows of each customer's last purchases before `before`,
    most recent first, -1 where fewer. `transactions` has the Kaggle columns, in file order."""
    want = pl.DataFrame({"customer_id": customer_hex, "c": np.arange(len(customer_hex))})
    art_map = pl.DataFrame(
        {"article_id": article_ids.astype(np.int64), "a": np.arange(len(article_ids))}
    )
    rows = (
        transactions.filter(pl.col("t_dat") < before)
        .with_row_index("i")
        .join(want.lazy(), on="customer_id", how="inner")
        .sort("c", "i")
        .with_columns(pl.col("article_id").cast(pl.Int64))
        .filter(
            ~(
                pl.struct("t_dat", "article_id", "price", "sales_channel_id")
                == pl.struct("t_dat", "article_id", "price", "sales_channel_id").shift(1)
            )
            .over("c")
            .fill_null(False)
        )
        .with_columns(pl.int_range(pl.len(), 0, -1).over("c").sub(1).alias("r"))
        .filter(pl.col("r") < slots)
        .join(art_map.lazy(), on="article_id", how="left")
        .select("c", "r", "a")
        .collect()
    )
    out = np.full((len(customer_hex), slots), -1, dtype=np.int64)
    out[rows["c"].to_numpy(), rows["r"].to_numpy()] = rows["a"].fill_null(-1).to_numpy()
    return out


def week_sampler(world: World, week: int) -> WeekSampler:
    """The taste distribution of every segment in `week` (built once per week)."""
    n_groups = world.cust("group_pref").shape[1]
    return WeekSampler.build(_SegmentsView(world), world.catalogue(), week, n_groups)


def item_probabilities(
    world: World, sampler: WeekSampler, rows: np.ndarray, history: np.ndarray, week: int
) -> tuple[np.ndarray, np.ndarray]:
    """P(item = article) over all articles for customer rows `rows` (dense, float32), and the
    expected number of items each buys in `week`."""
    beh = world.behaviour
    cat = world.catalogue()
    n_art = len(cat.price)
    segment = world.arrays["seg_segment"][rows]
    taste_alive = sampler.taste_probabilities(segment, world.cust("group_pref")[rows])
    taste = np.zeros((len(rows), n_art), dtype=np.float32)
    taste[:, sampler.alive] = taste_alive
    r_idx = np.arange(len(rows))[:, None]

    # Novelty redraw: the mass of taste draws that hit a recent purchase is drawn again.
    valid = history >= 0
    safe = np.where(valid, history, 0)
    distinct = np.sort(np.where(valid, history, -1), axis=1)
    first_seen = (distinct >= 0) & np.c_[
        np.ones(len(rows), bool), distinct[:, 1:] != distinct[:, :-1]
    ]
    hist_art = np.where(first_seen, distinct, 0)
    hit_mass = np.where(first_seen, taste[r_idx, hist_art], 0.0)
    p_hit = hit_mass.sum(axis=1)
    taste *= (1 + p_hit)[:, None].astype(np.float32)
    taste[r_idx, hist_art] = np.where(first_seen, hit_mass * p_hit[:, None], taste[r_idx, hist_art])

    p_rep = np.minimum(world.cust("p_repurchase")[rows], 0.45).astype(np.float64)
    p_sib = np.minimum(world.cust("p_sibling")[rows], 0.45).astype(np.float64)
    n_filled = valid.sum(axis=1)
    rec = recency_slot_probabilities(n_filled, history.shape[1])  # by recency r
    cnt = cat.code_count[safe]
    rep_w = p_rep[:, None] * rec * valid
    sib_ok = valid & (cnt > 1)
    sib_w = p_sib[:, None] * rec * sib_ok
    taste_w = 1.0 - rep_w.sum(axis=1) - sib_w.sum(axis=1)
    first = taste
    first *= taste_w[:, None].astype(np.float32)
    rows_b = np.broadcast_to(r_idx, safe.shape)
    np.add.at(first, (rows_b, safe), rep_w.astype(np.float32))
    # Other colours: the slot's mass spread over the code's other articles.
    starts = cat.code_start[safe]
    for off in range(1, int(cnt.max(initial=1))):
        ok = sib_ok & (off < cnt)
        if not ok.any():
            break
        target = starts + (safe - starts + off) % np.maximum(cnt, 1)
        share = np.where(ok, sib_w / np.maximum(cnt - 1, 1), 0.0)
        np.add.at(first, (rows_b, target), share.astype(np.float32))

    # Outfit partners of the basket's first item: a sparse (article x partner) product.
    comp = first @ world.companion_matrix()
    bulk = world.cust("bulk")[rows]
    mean_size = 1 + (beh.mean_basket_size - 1) * np.where(bulk, 5, 1)
    p_out = world.cust("p_outfit")[rows].astype(np.float64)
    later = (1 - 1 / mean_size) * p_out
    item = first * (1 - later)[:, None].astype(np.float32) + comp * later[:, None].astype(
        np.float32
    )

    lam = world.arrays["rate_scale"][0] * world.cust("activity")[rows] * volume(week)
    one_time = world.cust("one_time_week")[rows]
    join = world.cust("join_week")[rows]
    sure = world.cust("first_basket_week")[rows] == week
    active = (join <= week) & (week < world.cust("churn_week")[rows]) & (one_time < 0)
    baskets = np.where(active, lam, 0.0)
    baskets = np.where(active & sure, lam + np.exp(-lam), baskets)
    baskets = np.where(one_time == week, 1.0, baskets)
    return item, baskets * mean_size


def oracle_top_k(
    raw_dir: Path,
    transactions: pl.LazyFrame,
    week_start: date,
    customer_hex: pl.Series,
    k: int = 12,
    chunk: int | None = None,
) -> pl.DataFrame:
    """The k articles each customer is most likely to buy in the week starting `week_start`.

    Returns customer_id (hex), article_id, probability, rank. Only purchases before
    `week_start` are read from `transactions` (Kaggle columns, file order).
    """
    import torch

    if (week_start - DAY0).days % 7:
        raise ValueError(f"{week_start} is not a Wednesday: weeks run Wednesday to Tuesday")
    world = World.load(raw_dir)
    week = week_of(week_start)
    all_hex = pl.Series(world.arrays["customer_hex"].astype("U64"))
    lookup = pl.DataFrame({"customer_id": all_hex, "row": np.arange(len(all_hex))})
    wanted = pl.DataFrame({"customer_id": customer_hex}).join(lookup, on="customer_id", how="left")
    if wanted["row"].null_count():
        missing = wanted.filter(pl.col("row").is_null())["customer_id"][0]
        raise KeyError(f"customer {missing} is not in this world")
    rows = wanted["row"].to_numpy()
    article_ids = world.arrays["article_ids"]
    slots = world.behaviour.history_slots
    history = recent_purchases(transactions, wanted["customer_id"], article_ids, week_start, slots)
    chunk = chunk or max(1, int(2e8 // max(len(article_ids), 1) // 4))
    sampler = week_sampler(world, week)
    # the week's per-segment table is built on first use: once, here, before threads share it
    sampler.taste_probabilities(np.zeros(0, np.int64), world.cust("group_pref")[:0])
    hexes = wanted["customer_id"].to_numpy()

    def top_of(s: int) -> pl.DataFrame:
        """One chunk of customers, fully vectorized: the k largest P(item = a), turned into
        P(buy a in the week) = 1 - exp(-E[items] * P(item = a)), which is increasing in it."""
        item, n_items = item_probabilities(
            world, sampler, rows[s : s + chunk], history[s : s + chunk], week
        )
        kk = min(k, item.shape[1])
        with torch.no_grad():
            top_item, top = torch.topk(torch.from_numpy(item), kk, dim=1, sorted=True)
        del item
        prob = -np.expm1(-top_item.numpy().astype(np.float64) * n_items[:, None])
        return pl.DataFrame(
            {
                "customer_id": np.repeat(hexes[s : s + chunk], kk),
                "article_id": article_ids[top.numpy().ravel()].astype(np.int32),
                "probability": prob.ravel(),
                "rank": np.tile(np.arange(1, kk + 1, dtype=np.int32), len(prob)),
            }
        )

    # numpy and torch release the GIL in the dense work: two chunks at a time on two cores
    with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
        parts = list(pool.map(top_of, range(0, len(rows), chunk)))
    if not parts:
        return pl.DataFrame(
            schema={
                "customer_id": pl.String,
                "article_id": pl.Int32,
                "probability": pl.Float64,
                "rank": pl.Int32,
            }
        )
    return pl.concat(parts)
