"""The published marginals of the real data, shipped with the package."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources


@cache
def load(name: str) -> dict:
    """Load one reference JSON: 'catalogue_marginals', 'customer_marginals' or
    'transaction_sample_stats'."""
    text = resources.files("hm_pipeline.synth").joinpath(f"reference/{name}.json").read_text()
    return json.loads(text)


# Published figures of the real data, for the world's report.
REAL_FIGURES: dict[str, float] = {
    "customers": 1_371_980,
    "articles": 105_542,
    "transactions": 31_788_324,
    "customers_with_transactions": 1_362_281,
    "articles_with_transactions": 104_547,
    "txn_per_customer_median": 9,
    "txn_per_customer_mean": 23.3,
    "txn_per_customer_max": 1_895,
    "txn_per_article_median": 65,
    "txn_per_article_mean": 304,
    "share_customers_last_week": 69_000 / 1_371_980,
    "share_customers_inactive_last_3_months": 0.5,
    "share_pairs_single_date": 0.958,
    "share_online": 0.70,
    "share_identical_rows": 0.091,
    "articles_with_image": 105_100,
}
