"""The catalogue: articles.csv rows and each article's latent behaviour."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from hm_pipeline.schema import ARTICLES_COLUMNS
from hm_pipeline.synth import reference, text

N_CALENDAR_DAYS = 735  # day 0 is Wednesday 2018-09-19; transactions run on days 1..734

# Product types whose sales follow the summer or the winter (week of year of the peak).
_SUMMER = ("short", "swim", "bikini", "vest", "sandal", "sunglass", "dress", "skirt", "flip")
_WINTER = (
    "jacket",
    "coat",
    "sweater",
    "boot",
    "hoodie",
    "cardigan",
    "scarf",
    "glove",
    "beanie",
    "hat/beanie",
    "cap/peaked",
    "pyjama",
)


@dataclass
class Catalogue:
    """articles.csv as a frame, plus per-article latent arrays (index = row of `articles`)."""

    articles: pl.DataFrame
    group_idx: np.ndarray  # product_group_name as an integer: the customer's taste category
    type_idx: np.ndarray
    index_idx: np.ndarray
    colour_idx: np.ndarray  # perceived colour master
    appearance_idx: np.ndarray
    price: np.ndarray  # base price (scaled units)
    launch_day: np.ndarray
    halflife_weeks: np.ndarray
    base_popularity: np.ndarray
    season_peak_week: np.ndarray
    season_amp: np.ndarray
    companions: np.ndarray  # (n, 2): articles bought together with this one
    code_start: np.ndarray  # first row of this article's product code (rows sorted by code)
    code_count: np.ndarray  # number of articles of this product code

    def latent_arrays(self) -> dict[str, np.ndarray]:
        """The arrays to save beside the files for the oracle."""
        return {k: v for k, v in self.__dict__.items() if isinstance(v, np.ndarray)}


def _weighted(rng: np.random.Generator, weights: np.ndarray, size: int) -> np.ndarray:
    p = np.asarray(weights, dtype=np.float64)
    return rng.choice(len(p), size=size, p=p / p.sum())


def _conditional(
    rng: np.random.Generator, keys: np.ndarray, table: pl.DataFrame, key_col: str
) -> np.ndarray:
    """For each key, draw a row of `table` among rows with that key, weighted by `n`.

    Returns row indices into `table` (-1 where no row has the key)."""
    out = np.full(len(keys), -1, dtype=np.int64)
    tkeys = table[key_col].to_numpy()
    weights = table["n"].to_numpy().astype(np.float64)
    for key in np.unique(keys):  # a loop over category values (tens), not over articles
        rows = np.flatnonzero(tkeys == key)
        mask = keys == key
        if len(rows):
            w = weights[rows]
            out[mask] = rows[rng.choice(len(rows), size=int(mask.sum()), p=w / w.sum())]
    return out


def _season_profile(type_names: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    lower = np.char.lower(type_names.astype(str))
    summer = np.zeros(len(lower), dtype=bool)
    winter = np.zeros(len(lower), dtype=bool)
    for kw in _SUMMER:
        summer |= np.char.find(lower, kw) >= 0
    for kw in _WINTER:
        winter |= np.char.find(lower, kw) >= 0
    peak = np.where(summer, 26.0, np.where(winter, 49.0, rng.uniform(0, 52, len(lower))))
    amp = np.where(
        summer | winter, rng.uniform(0.6, 1.1, len(lower)), rng.uniform(0, 0.25, len(lower))
    )
    return peak, amp


def generate_catalogue(
    rng: np.random.Generator, n_articles: int, popularity_sigma: float, halflife_weeks: float
) -> Catalogue:
    """Draw `n_articles` articles whose marginals follow the real catalogue."""
    ref = reference.load("catalogue_marginals")

    # Product codes and their number of colour variants.
    per_code = ref["articles_per_product_code"]
    sizes = np.array([int(k) for k in per_code])
    size_w = np.array(list(per_code.values()), dtype=np.float64)
    n_codes_guess = int(n_articles / (sizes * size_w / size_w.sum()).sum() * 1.2) + 10
    counts = sizes[_weighted(rng, size_w, n_codes_guess)]
    csum = np.cumsum(counts)
    n_codes = int(np.searchsorted(csum, n_articles) + 1)
    counts = counts[:n_codes].copy()
    counts[-1] -= int(csum[n_codes - 1] - n_articles)

    # Hierarchy per product code: index and product group, then type, section, department.
    idx_tab = pl.DataFrame(ref["index"])
    ixpg = pl.DataFrame(ref["index_x_product_group"]).join(
        idx_tab.select("index_name", "index_code", "index_group_no", "index_group_name"),
        on="index_name",
    )
    pick = _weighted(rng, ixpg["n"].to_numpy(), n_codes)
    code_df = ixpg[pick].select(
        "index_code", "index_name", "index_group_no", "index_group_name", "product_group_name"
    )
    pgt = pl.DataFrame(ref["product_group_type"])
    rows = _conditional(rng, code_df["product_group_name"].to_numpy(), pgt, "product_group_name")
    code_df = code_df.with_columns(
        pgt[rows].select("product_type_no", "product_type_name").to_series(i).alias(c)
        for i, c in enumerate(["product_type_no", "product_type_name"])
    )
    sec = pl.DataFrame(ref["section"])
    rows = _conditional(rng, code_df["index_code"].to_numpy(), sec, "index_code")
    code_df = code_df.with_columns(
        sec[rows]["section_no"].alias("section_no"), sec[rows]["section_name"].alias("section_name")
    )
    dep = pl.DataFrame(ref["department"])
    rows = _conditional(rng, code_df["index_code"].to_numpy(), dep, "index_code")
    code_df = code_df.with_columns(
        dep[rows]["department_no"].alias("department_no"),
        dep[rows]["department_name"].alias("department_name"),
    )
    gg = pl.DataFrame(ref["garment_group"])
    ggpt = pl.DataFrame(ref["garment_group_x_product_type"]).join(
        gg.select("garment_group_name", "garment_group_no"), on="garment_group_name"
    )
    rows = _conditional(rng, code_df["product_type_name"].to_numpy(), ggpt, "product_type_name")
    fallback = _weighted(rng, gg["n"].to_numpy(), n_codes)
    gg_no = np.where(
        rows >= 0,
        ggpt["garment_group_no"].to_numpy()[np.maximum(rows, 0)],
        gg["garment_group_no"].to_numpy()[fallback],
    )
    gg_name = np.where(
        rows >= 0,
        ggpt["garment_group_name"].to_numpy()[np.maximum(rows, 0)],
        gg["garment_group_name"].to_numpy()[fallback],
    )
    ga = pl.DataFrame(ref["graphical_appearance"])
    code_df = code_df.with_columns(
        pl.Series("garment_group_no", gg_no),
        pl.Series("garment_group_name", gg_name),
        pl.Series("code_appearance", _weighted(rng, ga["n"].to_numpy(), n_codes)),
        pl.Series("prod_name", text.product_names(rng, n_codes)),
    )

    # Launch days decide product code numbers: codes grow with time, as in the real file.
    launch = rng.uniform(-500, N_CALENDAR_DAYS + 10, n_codes)
    order = np.argsort(launch, kind="stable")
    launch = launch[order]
    code_df = code_df[order]
    counts = counts[order]
    code_numbers = np.sort(rng.choice(np.arange(108_775, 959_462), size=n_codes, replace=False))

    # Article rows: expand codes by their variant count.
    code_of = np.repeat(np.arange(n_codes), counts)
    n = len(code_of)
    code_start_of_code = np.concatenate([[0], np.cumsum(counts)[:-1]])
    variant = np.arange(n) - code_start_of_code[code_of]
    steps = rng.integers(1, 4, size=n)
    steps[variant == 0] = rng.integers(1, 30, size=int((variant == 0).sum()))
    suffix = np.cumsum(steps) - np.repeat(
        np.cumsum(steps)[code_start_of_code] - steps[code_start_of_code], counts
    )
    # At most 29 + 74 * 3 < 1000, so suffixes stay three digits and unique within a code.
    article_id = code_numbers[code_of].astype(np.int64) * 1000 + suffix

    colour = pl.DataFrame(ref["colour"])
    crow = _weighted(rng, colour["n"].to_numpy(), n)
    pcv = pl.DataFrame(ref["perceived_colour_value"])
    vrow = _weighted(rng, pcv["n"].to_numpy(), n)
    own_ga = _weighted(rng, ga["n"].to_numpy(), n)
    arow = np.where(rng.random(n) < 0.75, code_df["code_appearance"].to_numpy()[code_of], own_ga)

    art = code_df[code_of].with_columns(
        pl.Series("article_id", article_id),
        pl.Series("product_code", code_numbers[code_of].astype(np.int64)),
        ga[arow]["graphical_appearance_no"].alias("graphical_appearance_no"),
        ga[arow]["graphical_appearance_name"].alias("graphical_appearance_name"),
        colour[crow]["colour_group_code"].alias("colour_group_code"),
        colour[crow]["colour_group_name"].alias("colour_group_name"),
        pcv[vrow]["perceived_colour_value_id"].alias("perceived_colour_value_id"),
        pcv[vrow]["perceived_colour_value_name"].alias("perceived_colour_value_name"),
        colour[crow]["perceived_colour_master_id"].alias("perceived_colour_master_id"),
        colour[crow]["perceived_colour_master_name"].alias("perceived_colour_master_name"),
    )
    art = art.with_columns(text.descriptions(rng, art)).select(ARTICLES_COLUMNS)

    # Prices: a median per product type, a level per product code, SEK price points / 590.
    type_codes, type_idx = np.unique(art["product_type_no"].to_numpy(), return_inverse=True)
    type_median = 0.032 * np.exp(rng.normal(0, 0.45, len(type_codes)))
    code_level = np.exp(rng.normal(0, 0.35, n_codes))
    sek = type_median[type_idx] * code_level[code_of] * 590
    sek = np.maximum(np.round(sek / 5) * 5 - 0.01, 0.49)
    price = sek / 590

    group_names, group_idx = np.unique(art["product_group_name"].to_numpy(), return_inverse=True)
    _, index_idx = np.unique(art["index_code"].to_numpy(), return_inverse=True)
    _, colour_idx = np.unique(art["perceived_colour_master_id"].to_numpy(), return_inverse=True)
    _, appearance_idx = np.unique(art["graphical_appearance_no"].to_numpy(), return_inverse=True)

    # Lifecycle: launch (with a few days of spread between colours), peak, decline.
    launch_day = launch[code_of] + rng.integers(0, 14, n) * (variant > 0)
    basics = rng.random(n) < 0.12
    halflife = np.where(
        basics, rng.uniform(40, 120, n), np.exp(rng.normal(np.log(halflife_weeks), 0.5, n))
    )
    base_pop = (
        np.exp(rng.normal(0, popularity_sigma, n)) * np.exp(rng.normal(0, 0.5, n_codes))[code_of]
    )
    peak, amp = _season_profile(art["product_type_name"].to_numpy(), rng)

    companions = _companions(rng, art["index_group_no"].to_numpy(), launch_day, group_idx)

    return Catalogue(
        articles=art,
        group_idx=group_idx.astype(np.int16),
        type_idx=type_idx.astype(np.int16),
        index_idx=index_idx.astype(np.int16),
        colour_idx=colour_idx.astype(np.int16),
        appearance_idx=appearance_idx.astype(np.int16),
        price=price.astype(np.float64),
        launch_day=launch_day.astype(np.float32),
        halflife_weeks=halflife.astype(np.float32),
        base_popularity=base_pop.astype(np.float32),
        season_peak_week=peak.astype(np.float32),
        season_amp=amp.astype(np.float32),
        companions=companions,
        code_start=code_start_of_code[code_of].astype(np.int32),
        code_count=counts[code_of].astype(np.int32),
    )


def _companions(
    rng: np.random.Generator, index_group: np.ndarray, launch_day: np.ndarray, group_idx: np.ndarray
) -> np.ndarray:
    """Two outfit partners per article: same index group, launched the same month, preferably
    another product group (a top with trousers, a dress with shoes)."""
    n = len(index_group)
    collection = index_group.astype(np.int64) * 10_000 + (launch_day // 28).astype(np.int64) + 100
    order = np.argsort(collection, kind="stable")
    sorted_coll = collection[order]
    starts = np.searchsorted(sorted_coll, sorted_coll, side="left")
    ends = np.searchsorted(sorted_coll, sorted_coll, side="right")
    size = ends - starts
    out = np.empty((n, 2), dtype=np.int32)
    for j in range(2):
        pick = order[starts + rng.integers(0, 1 << 30, n) % size]
        for _ in range(3):  # redraw partners of the same product group, a few times
            same = (group_idx[order] == group_idx[pick]) & (size > 1)
            redraw = order[starts + rng.integers(0, 1 << 30, n) % size]
            pick = np.where(same, redraw, pick)
        out[order, j] = pick
    return out
