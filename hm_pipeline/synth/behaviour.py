"""The purchase process: who buys when, and what. Shared by the simulator and the oracle.

An item in a basket is, for the basket's first item, a repurchase from the customer's recent
purchases (p_repurchase), another colour of a recent purchase (p_sibling), or a taste draw:
product group from the customer's personal taste, then an article from the week's popularity
weighted by the customer's segment (style x price tier) affinity; a taste draw that hits one of
the recent purchases is drawn once more. A later item is an outfit
partner of the first item with probability p_outfit, otherwise drawn like a first item.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from hm_pipeline.synth.catalogue import Catalogue
from hm_pipeline.synth.config import Behaviour
from hm_pipeline.synth.customers import Customers

DAY0 = date(2018, 9, 19)  # Wednesday of the first week
FIRST_DAY, LAST_DAY = 1, 734  # 2018-09-20 .. 2020-09-22
N_WEEKS = 105
WEEKDAY_WEIGHTS = np.array([0.13, 0.13, 0.15, 0.17, 0.16, 0.13, 0.13])  # Wed .. Tue
LOCKDOWN_WEEKS = (78, 86)  # 2020-03-18 .. 2020-05-12: stores mostly closed


def week_start(week: int) -> date:
    """The Wednesday that starts simulation week `week`."""
    return DAY0 + timedelta(days=7 * week)


def week_of(d: date) -> int:
    """The simulation week holding day `d`."""
    return (d - DAY0).days // 7


def volume(week: np.ndarray | int) -> np.ndarray:
    """Relative store traffic per week: summer and pre-holiday peaks."""
    w = np.asarray(week, dtype=np.float64)
    woy = ((w * 7 + 262) % 365.25) / 7.0  # week of year of the week's Wednesday
    summer = 0.25 * np.exp(-((woy - 25.5) ** 2) / 8.0)
    black_friday = 0.35 * np.exp(-((woy - 47.3) ** 2) / 0.8)
    december = 0.15 * np.exp(-((woy - 50.5) ** 2) / 3.0)
    january_low = -0.15 * np.exp(-((woy - 4) ** 2) / 6.0)
    # the real data's final two months sell less than its two-year mean
    late_2020 = np.where(w >= 96, -0.2, 0.0)
    return 1.0 + summer + black_friday + december + january_low + late_2020


@dataclass
class Segments:
    """Static segment x article affinities and the customer's segment."""

    affinity: np.ndarray  # (n_segments, n_articles) float32
    segment: np.ndarray  # (n_customers,) int32


def segment_affinity(
    rng: np.random.Generator, cat: Catalogue, cust: Customers, beh: Behaviour
) -> Segments:
    """Each style likes some index, product types, colours and patterns; each price tier has an
    elasticity. Affinity of segment (style, tier) for an article is their product."""
    k = beh.n_styles
    n_index = int(cat.index_idx.max()) + 1
    n_type = int(cat.type_idx.max()) + 1
    n_col = int(cat.colour_idx.max()) + 1
    n_app = int(cat.appearance_idx.max()) + 1
    sd = beh.affinity_scale
    idx_aff = rng.normal(0, 1.3 * sd, (k, n_index))
    type_aff = rng.normal(0, 0.9 * sd, (k, n_type))
    col_aff = rng.normal(0, 0.8 * sd, (k, n_col))
    app_aff = rng.normal(0, 0.7 * sd, (k, n_app))
    style_score = (
        idx_aff[:, cat.index_idx]
        + type_aff[:, cat.type_idx]
        + col_aff[:, cat.colour_idx]
        + app_aff[:, cat.appearance_idx]
    )
    elasticity = np.linspace(1.0, -0.3, beh.n_price_tiers)
    log_price = np.log(cat.price / np.median(cat.price))
    aff = np.exp(style_score[:, None, :] - elasticity[None, :, None] * log_price[None, None, :])
    aff = aff.reshape(k * beh.n_price_tiers, -1).astype(np.float32)
    segment = (cust.style.astype(np.int32) * beh.n_price_tiers + cust.price_tier).astype(np.int32)
    return Segments(affinity=aff, segment=segment)


def article_popularity(cat: Catalogue, week: int) -> np.ndarray:
    """Popularity of every article in `week`: base x lifecycle (launch, peak, decline) x season."""
    mid_day = week * 7 + 3.5
    age_weeks = (mid_day - cat.launch_day) / 7.0
    rise = np.clip((age_weeks + 1.0) / 2.0, 0.0, 1.0)
    decline = np.power(0.5, np.maximum(age_weeks - 2.0, 0.0) / cat.halflife_weeks)
    woy = ((mid_day + 262) % 365.25) / 7.0
    season = np.exp(cat.season_amp * (np.cos(2 * np.pi * (woy - cat.season_peak_week) / 52.0) - 1))
    pop = cat.base_popularity * rise * decline * season
    return np.where(age_weeks >= -0.5, pop, 0.0).astype(np.float64)


@dataclass
class WeekSampler:
    """Cumulative weights to draw (segment, product group) -> article in one week."""

    alive: np.ndarray  # article indices, sorted by product group
    group_lo: np.ndarray  # (n_groups,) first position of each group in `alive`
    group_hi: np.ndarray
    cum: np.ndarray  # flat cumulative weights, row-major over (segment, alive position)
    weights: np.ndarray  # (n_segments, n_alive)
    _within_group: np.ndarray | None = None

    @property
    def groups_of_alive(self) -> np.ndarray:
        """The product group of each alive position."""
        return np.repeat(np.arange(len(self.group_lo)), self.group_hi - self.group_lo)

    @classmethod
    def build(cls, seg: Segments, cat: Catalogue, week: int, n_groups: int) -> WeekSampler:
        """Sampler over articles alive in `week` (popularity above 1% of the week's 99th pct)."""
        pop = article_popularity(cat, week)
        cut = np.quantile(pop[pop > 0], 0.99) * 1e-3 if (pop > 0).any() else 0.0
        alive = np.flatnonzero(pop > cut)
        alive = alive[np.argsort(cat.group_idx[alive], kind="stable")]
        groups = cat.group_idx[alive]
        lo = np.searchsorted(groups, np.arange(n_groups), side="left")
        hi = np.searchsorted(groups, np.arange(n_groups), side="right")
        weights = seg.affinity[:, alive] * pop[alive][None, :].astype(np.float32)
        cum = np.cumsum(weights.astype(np.float64).ravel())
        return cls(alive=alive, group_lo=lo, group_hi=hi, cum=cum, weights=weights)

    def taste_probabilities(self, segment: np.ndarray, group_pref: np.ndarray) -> np.ndarray:
        """P(article | taste draw) for customers: (len(segment), n_alive) float32 over `alive`."""
        if self._within_group is None:
            # P(article | segment, its group), computed once per week for every segment
            nonempty = self.group_hi > self.group_lo
            z = np.add.reduceat(self.weights.astype(np.float64), self.group_lo[nonempty], axis=1)
            z_full = np.ones((self.weights.shape[0], len(self.group_lo)))
            z_full[:, nonempty] = z
            self._within_group = (self.weights / z_full[:, self.groups_of_alive]).astype(np.float32)
        pref = group_pref.astype(np.float64)
        pref[:, self.group_hi == self.group_lo] = 0.0
        pref /= np.maximum(pref.sum(axis=1, keepdims=True), 1e-12)
        return self._within_group[segment] * pref[:, self.groups_of_alive].astype(np.float32)

    def draw(
        self, rng: np.random.Generator, segment: np.ndarray, group_pref: np.ndarray
    ) -> np.ndarray:
        """Draw one article per row: group from `group_pref` rows, article within the group."""
        n_alive = len(self.alive)
        pref = group_pref.astype(np.float64).copy()
        pref[:, self.group_hi == self.group_lo] = 0.0  # no article of that group this week
        pref_cum = np.cumsum(pref, axis=1)
        u = rng.random(len(segment)) * pref_cum[:, -1]
        g = np.minimum((pref_cum < u[:, None]).sum(axis=1), len(self.group_lo) - 1)
        row0 = segment.astype(np.int64) * n_alive
        lo = row0 + self.group_lo[g]
        hi = row0 + self.group_hi[g]
        base = np.where(lo > 0, self.cum[np.maximum(lo - 1, 0)], 0.0)
        top = self.cum[np.maximum(hi - 1, 0)]
        pos = np.searchsorted(
            self.cum, base + rng.random(len(segment)) * (top - base), side="right"
        )
        pos = np.clip(pos, lo, hi - 1) - row0
        return self.alive[pos]


def recency_slot_probabilities(n_filled: np.ndarray, slots: int) -> np.ndarray:
    """P(pick the r-th most recent of n_filled history items), r = floor(n * u^2)."""
    r = np.arange(slots)[None, :]
    n = np.maximum(n_filled, 1)[:, None].astype(np.float64)
    p = np.sqrt(np.minimum(r + 1, n) / n) - np.sqrt(np.minimum(r, n) / n)
    return np.where(n_filled[:, None] > 0, p, 0.0)


@dataclass
class Transactions:
    """Generated transaction rows as arrays (file order not yet applied)."""

    day: np.ndarray  # int16 day index from DAY0
    customer: np.ndarray  # int32 row of customers.csv
    article: np.ndarray  # int32 row of articles.csv
    price: np.ndarray  # float64
    channel: np.ndarray  # int8


def basket_rate_scale(cust: Customers, beh: Behaviour, txn_per_customer: float) -> float:
    """Scale of the activity rates that makes the mean rows per customer hit the target."""
    rows_per_basket = (
        beh.mean_basket_size * (1 + beh.duplicate_share * 1.2) * (1 + beh.bulk_share * 4)
    )
    weeks = np.arange(N_WEEKS)
    vol = volume(weeks)
    vol_cum = np.concatenate([[0.0], np.cumsum(vol)])
    start = np.clip(cust.join_week.astype(np.int64), 0, N_WEEKS)
    end = np.clip(cust.churn_week.astype(np.int64), 0, N_WEEKS)
    exposure = np.maximum(vol_cum[end] - vol_cum[np.minimum(start, end)], 0.0)
    regular = cust.one_time_week < 0
    buyers = cust.activity > 0
    # one-time buyers and every regular buyer's first basket are fixed; the rates fill the rest
    target_baskets = txn_per_customer * buyers.sum() / rows_per_basket - buyers.sum()
    return float(target_baskets / max((cust.activity * exposure)[regular].sum(), 1e-9))


def simulate(
    rng: np.random.Generator,
    cat: Catalogue,
    cust: Customers,
    seg: Segments,
    beh: Behaviour,
    txn_per_customer: float,
    progress: Callable[[int, int], None] | None = None,
) -> Transactions:
    """Simulate every week's baskets; vectorized within a week, a loop over the 105 weeks."""
    n_cust = len(cust.activity)
    n_groups = cust.group_pref.shape[1]
    slots = beh.history_slots
    history = np.full((n_cust, slots), -1, dtype=np.int32)
    n_bought = np.zeros(n_cust, dtype=np.int64)
    rate = cust.activity * basket_rate_scale(cust, beh, txn_per_customer)
    p_rep = np.minimum(cust.p_repurchase, 0.45).astype(np.float64)
    p_sib = np.minimum(cust.p_sibling, 0.45).astype(np.float64)
    sale_price = np.maximum(np.round(cat.price * 590 * 0.7 / 5) * 5 - 0.01, 0.49) / 590
    chunks: list[Transactions] = []
    for week in range(N_WEEKS):
        sampler = WeekSampler.build(seg, cat, week, n_groups)
        active = (cust.join_week <= week) & (week < cust.churn_week) & (cust.one_time_week < 0)
        lam = np.where(active, rate * volume(week), 0.0)
        n_baskets = rng.poisson(lam)
        # Every regular buyer buys in their first-basket week; one-time buyers only once.
        first_week = (
            (cust.first_basket_week == week) & (cust.activity > 0) & (cust.one_time_week < 0)
        )
        n_baskets[first_week] = np.maximum(n_baskets[first_week], 1)
        n_baskets[cust.one_time_week == week] = 1
        buyers = np.flatnonzero(n_baskets)
        b_cust = np.repeat(buyers, n_baskets[buyers]).astype(np.int32)
        b_day = (week * 7 + rng.choice(7, size=len(b_cust), p=WEEKDAY_WEIGHTS)).astype(np.int16)
        online_p = cust.online[b_cust].astype(np.float64)
        if LOCKDOWN_WEEKS[0] <= week < LOCKDOWN_WEEKS[1]:
            online_p = 1 - (1 - online_p) * 0.3
        b_channel = np.where(rng.random(len(b_cust)) < online_p, 2, 1).astype(np.int8)
        extra = rng.negative_binomial(0.9, 0.9 / (0.9 + beh.mean_basket_size - 1), len(b_cust))
        b_size = 1 + extra * np.where(cust.bulk[b_cust], 5, 1)
        order = np.lexsort((b_day, b_cust))  # chronological per customer
        b_cust, b_day, b_channel, b_size = (
            b_cust[order],
            b_day[order],
            b_channel[order],
            b_size[order],
        )

        # Items.
        i_basket = np.repeat(np.arange(len(b_cust)), b_size)
        i_cust = b_cust[i_basket]
        first = np.r_[True, i_basket[1:] != i_basket[:-1]] if len(i_basket) else np.zeros(0, bool)
        u = rng.random(len(i_cust))
        mode = np.where(u < p_rep[i_cust], 1, np.where(u < p_rep[i_cust] + p_sib[i_cust], 2, 0))
        outfit = ~first & (rng.random(len(i_cust)) < cust.p_outfit[i_cust])
        art = np.full(len(i_cust), -1, dtype=np.int32)
        # Repurchase and other colour: a recent purchase, more recent more likely.
        filled = np.minimum(n_bought[i_cust], slots)
        r = np.floor(filled * rng.random(len(i_cust)) ** 2).astype(np.int64)
        slot = (n_bought[i_cust] - 1 - r) % slots
        past = np.where(filled > 0, history[i_cust, slot], -1)
        use_rep = (mode == 1) & (past >= 0) & ~outfit
        art[use_rep] = past[use_rep]
        cnt = cat.code_count[np.maximum(past, 0)]
        use_sib = (mode == 2) & (past >= 0) & (cnt > 1) & ~outfit
        ps = past[use_sib]
        start = cat.code_start[ps]
        offset = (ps - start + 1 + rng.integers(0, 1 << 30, len(ps)) % (cnt[use_sib] - 1)) % cnt[
            use_sib
        ]
        art[use_sib] = start + offset
        taste = np.flatnonzero((art < 0) & ~outfit)
        art[taste] = sampler.draw(rng, seg.segment[i_cust[taste]], cust.group_pref[i_cust[taste]])
        # Novelty: a taste draw that hits a recent purchase is drawn once more.
        seen = (history[i_cust[taste]] == art[taste][:, None]).any(axis=1)
        again = taste[seen]
        art[again] = sampler.draw(rng, seg.segment[i_cust[again]], cust.group_pref[i_cust[again]])
        # Outfits: a partner of the basket's first item.
        basket_first = np.flatnonzero(first)
        first_art = art[basket_first][i_basket[outfit]]
        art[outfit] = cat.companions[first_art, rng.integers(0, 2, int(outfit.sum()))]

        # Update the recent-purchase history (last `slots` items per customer).
        cust_start = np.searchsorted(i_cust, i_cust, side="left")
        cust_end = np.searchsorted(i_cust, i_cust, side="right")
        k = np.arange(len(i_cust)) - cust_start
        keep = k >= (cust_end - cust_start) - slots
        history[i_cust[keep], (n_bought[i_cust[keep]] + k[keep]) % slots] = art[keep]
        n_bought += np.bincount(i_cust, minlength=n_cust)

        # Prices: sale price late in the lifecycle, an occasional member discount.
        i_day = b_day[i_basket]
        age_weeks = (i_day - cat.launch_day[art]) / 7.0
        on_sale = age_weeks > 2 + 1.5 * cat.halflife_weeks[art]
        price = np.where(on_sale, sale_price[art], cat.price[art])
        price = np.where(rng.random(len(art)) < 0.08, price * 0.9, price)

        # Identical rows for multiple units.
        copies = 1 + (rng.random(len(art)) < beh.duplicate_share) * (
            1 + (rng.random(len(art)) < 0.2)
        )
        rows = np.repeat(np.arange(len(art)), copies)
        in_calendar = (i_day[rows] >= FIRST_DAY) & (i_day[rows] <= LAST_DAY)
        rows = rows[in_calendar]
        chunks.append(
            Transactions(
                day=i_day[rows].astype(np.int16),
                customer=i_cust[rows],
                article=art[rows],
                price=price[rows],
                channel=b_channel[i_basket][rows],
            )
        )
        if progress:
            progress(week + 1, N_WEEKS)
    return Transactions(
        **{
            f: np.concatenate([getattr(c, f) for c in chunks])
            for f in Transactions.__dataclass_fields__
        }
    )
