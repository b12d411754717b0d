"""Customers: customers.csv rows and each customer's latent tastes and habits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from hm_pipeline.schema import CUSTOMERS_COLUMNS
from hm_pipeline.synth import reference
from hm_pipeline.synth.config import Behaviour


@dataclass
class Customers:
    """customers.csv as a frame (sorted by customer_id), plus latent arrays in the same order."""

    customers: pl.DataFrame
    style: np.ndarray
    price_tier: np.ndarray
    group_pref: np.ndarray  # (n, n_groups) personal taste over product groups, rows sum to 1
    activity: np.ndarray  # unscaled basket rate (lognormal); 0 for customers who never buy
    join_week: np.ndarray
    churn_week: np.ndarray
    one_time_week: np.ndarray  # week of the single basket of one-time buyers, else -1
    first_basket_week: np.ndarray  # a week in which a regular buyer surely buys
    bulk: np.ndarray
    online: np.ndarray  # probability that a basket is bought online
    p_repurchase: np.ndarray
    p_sibling: np.ndarray
    p_outfit: np.ndarray

    def latent_arrays(self) -> dict[str, np.ndarray]:
        """The arrays to save beside the files for the oracle."""
        return {k: v for k, v in self.__dict__.items() if isinstance(v, np.ndarray)}


def random_hex_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """`n` distinct-with-overwhelming-probability 64-char lowercase hex ids, sorted."""
    raw = np.frombuffer(rng.bytes(32 * n), dtype=np.uint8).reshape(n, 32)
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    hexed = np.empty((n, 64), dtype=np.uint8)
    hexed[:, 0::2] = digits[raw >> 4]
    hexed[:, 1::2] = digits[raw & 15]
    ids = hexed.view("S64").ravel()
    return np.sort(ids).astype("U64")


def _beta(rng: np.random.Generator, mean: float, strength: float, n: int) -> np.ndarray:
    return rng.beta(mean * strength, (1 - mean) * strength, n)


def generate_customers(
    rng: np.random.Generator, n: int, n_groups: int, group_share: np.ndarray, beh: Behaviour
) -> Customers:
    """Draw `n` customers whose columns follow the real marginals, with latent habits."""
    ref = reference.load("customer_marginals")
    ids = random_hex_ids(rng, n)

    fn = rng.random(n) < 0.342
    active = np.where(fn, rng.random(n) < 0.965, rng.random(n) < 0.004)
    status = rng.choice(
        np.array(["ACTIVE", "PRE-CREATE", "", "LEFT CLUB"]),
        size=n,
        p=[0.9257, 0.0699, 0.0042, 0.0002],
    )
    news = np.where(
        fn,
        rng.choice(["Regularly", "Monthly", "NONE"], size=n, p=[0.97, 0.002, 0.028]),
        rng.choice(["NONE", "Regularly"], size=n, p=[0.985, 0.015]),
    )
    news = np.where(rng.random(n) < 0.0117, "", news)
    news = np.where(rng.random(n) < 2e-6, "None", news)  # the real file's odd spelling

    hist = pl.DataFrame(ref["age_histogram"])
    ages = hist["age"].to_numpy()
    age = ages[rng.choice(len(ages), size=n, p=hist["n"].to_numpy() / hist["n"].sum())].astype(
        float
    )
    age_missing = rng.random(n) < 0.0126

    # Postal codes: one shared by ~8.7% of customers, the rest in small groups.
    n_codes = max(1, int(n * 0.45))
    postal_ids = random_hex_ids(rng, n_codes)
    big = rng.random(n) < ref["customers_per_postal_code_top"][0] / ref["sample_rows"]
    small_code = 1 + np.minimum(
        rng.geometric(0.35, n) - 1 + rng.integers(0, n_codes, n), n_codes - 2
    )
    postal = postal_ids[np.where(big, 0, small_code % n_codes)]

    df = (
        pl.DataFrame(
            {
                "customer_id": ids,
                "FN": np.where(fn, 1.0, np.nan),
                "Active": np.where(active, 1.0, np.nan),
                "club_member_status": status,
                "fashion_news_frequency": news,
                "age": np.where(age_missing, np.nan, age),
                "postal_code": postal,
            }
        )
        .with_columns(
            pl.col("FN", "Active", "age").fill_nan(None),
            pl.col("club_member_status", "fashion_news_frequency").replace("", None),
        )
        .select(CUSTOMERS_COLUMNS)
    )

    # Styles depend on age: each style has an age centre; customers pick near their age.
    centres = np.sort(rng.uniform(17, 68, beh.n_styles))
    style_w = rng.dirichlet(np.full(beh.n_styles, 2.0))
    eff_age = np.where(age_missing, rng.uniform(18, 70, n), age)
    logits = -((eff_age[:, None] - centres[None, :]) ** 2) / (2 * 9.0**2) + np.log(style_w)[None, :]
    gumbel = -np.log(-np.log(rng.random((n, beh.n_styles))))
    style = np.argmax(logits + gumbel, axis=1).astype(np.int16)
    price_tier = rng.choice(beh.n_price_tiers, size=n, p=[0.3, 0.5, 0.2]).astype(np.int8)

    # Personal taste over product groups: Dirichlet around the style's taste.
    # A style tilts the catalogue's group shares, so that small groups stay small.
    style_group = group_share[None, :] * np.exp(rng.normal(0, 0.6, (beh.n_styles, n_groups)))
    style_group /= style_group.sum(axis=1, keepdims=True)
    alpha = beh.taste_concentration * style_group[style] * n_groups
    g = rng.gamma(np.maximum(alpha, 1e-3)).astype(np.float32)
    group_pref = g / g.sum(axis=1, keepdims=True)

    # clipped so that no single customer dominates (the real maximum is 1,895 rows)
    activity = np.exp(np.clip(rng.normal(0, beh.activity_sigma, n), -4.0, 2.6))
    never = rng.random(n) < beh.never_buy_share
    activity[never] = 0.0
    # customers who joined before the calendar (negative weeks) are active from its start
    joined = rng.integers(-60, 105, n)
    join_week = np.maximum(0, joined).astype(np.int16)
    churn_week = (join_week + rng.exponential(beh.churn_mean_weeks, n) + 4).astype(np.int32)
    one_time = (rng.random(n) < beh.one_time_share) & ~never
    span_end = np.minimum(churn_week, 105)
    ot_week = join_week + (rng.random(n) * np.maximum(span_end - join_week, 1)).astype(np.int32)
    one_time_week = np.where(one_time, np.minimum(ot_week, 104), -1).astype(np.int16)
    bulk = (rng.random(n) < beh.bulk_share) & ~one_time
    # Every buyer buys at least once: newcomers in their join week, earlier members in a week
    # drawn from their span (a guaranteed basket in week 0 would be a spike the data lacks).
    spread = join_week + (rng.random(n) * np.maximum(span_end - join_week, 1)).astype(np.int32)
    first_basket_week = np.where(joined >= 0, join_week, np.minimum(spread, 104)).astype(np.int16)

    return Customers(
        customers=df,
        style=style,
        price_tier=price_tier,
        group_pref=group_pref.astype(np.float32),
        activity=activity.astype(np.float64),
        join_week=join_week,
        churn_week=churn_week,
        one_time_week=one_time_week,
        first_basket_week=first_basket_week,
        bulk=bulk,
        online=_beta(rng, beh.online_mean, 1.6, n).astype(np.float32),
        p_repurchase=_beta(rng, beh.repurchase_mean, 4.0, n).astype(np.float32),
        p_sibling=_beta(rng, beh.sibling_mean, 4.0, n).astype(np.float32),
        p_outfit=_beta(rng, beh.outfit_mean, 4.0, n).astype(np.float32),
    )
