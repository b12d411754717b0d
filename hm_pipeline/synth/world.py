"""Generate a whole synthetic world: the Kaggle files plus the latent state the oracle needs."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from hm_pipeline.schema import (
    ARTICLES_FILE,
    CUSTOMERS_FILE,
    IMAGES_DIR,
    SAMPLE_SUBMISSION_FILE,
    SYNTHETIC_DIR,
    TRANSACTIONS_FILE,
)
from hm_pipeline.synth.behaviour import (
    DAY0,
    Transactions,
    basket_rate_scale,
    segment_affinity,
    simulate,
)
from hm_pipeline.synth.catalogue import generate_catalogue
from hm_pipeline.synth.config import SCALES, ScaleConfig
from hm_pipeline.synth.customers import generate_customers
from hm_pipeline.synth.images import write_images

Progress = Callable[[str, int, int], None]
STATE_FILE = "world.npz"
META_FILE = "meta.json"
CSV_CHUNK_ROWS = 2_000_000
MISSING_IMAGE_SHARE = 442 / 105_542


def _noop(stage: str, done: int, total: int) -> None:
    return None


def generate_world(
    scale: str | ScaleConfig, seed: int, out_dir: Path, progress: Progress = _noop
) -> dict:
    """Write articles.csv, customers.csv, transactions_train.csv, sample_submission.csv and
    images/ into `out_dir`, and the latent state into `out_dir/_synthetic/`. Returns the meta."""
    cfg = SCALES[scale] if isinstance(scale, str) else scale
    beh = cfg.behaviour
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng_cat, rng_cust, rng_seg, rng_sim, rng_img = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5)
    )

    progress("catalogue", 0, 1)
    cat = generate_catalogue(rng_cat, cfg.n_articles, beh.popularity_sigma, beh.halflife_weeks)
    n_groups = int(cat.group_idx.max()) + 1
    group_share = np.bincount(cat.group_idx, minlength=n_groups) / len(cat.group_idx)
    progress("customers", 0, 1)
    cust = generate_customers(rng_cust, cfg.n_customers, n_groups, group_share, beh)
    seg = segment_affinity(rng_seg, cat, cust, beh)
    txn = simulate(
        rng_sim,
        cat,
        cust,
        seg,
        beh,
        cfg.txn_per_customer,
        progress=lambda d, t: progress("weeks", d, t),
    )

    progress("writing csv", 0, 1)
    _write_articles(cat.articles, out_dir / ARTICLES_FILE)
    _write_customers(cust.customers, out_dir / CUSTOMERS_FILE)
    article_ids = cat.articles["article_id"].to_numpy()
    customer_hex = cust.customers["customer_id"]
    _write_transactions(txn, article_ids, customer_hex, out_dir / TRANSACTIONS_FILE, progress)
    _write_sample_submission(txn, article_ids, customer_hex, out_dir / SAMPLE_SUBMISSION_FILE)

    has_image = rng_img.random(len(article_ids)) >= MISSING_IMAGE_SHARE
    if cfg.n_articles >= 500:  # a few articles without an image even in small worlds
        has_image[rng_img.choice(len(has_image), size=2, replace=False)] = False
    images = out_dir / IMAGES_DIR
    if images.exists():
        shutil.rmtree(images)
    write_images(
        cat.articles,
        has_image,
        images,
        cfg.image_size,
        int(rng_img.integers(1 << 31)),
        progress=lambda d, t: progress("images", d, t),
    )

    state = out_dir / SYNTHETIC_DIR
    state.mkdir(exist_ok=True)
    arrays = {f"cat_{k}": v for k, v in cat.latent_arrays().items()}
    arrays |= {f"cust_{k}": v for k, v in cust.latent_arrays().items()}
    arrays |= {
        "seg_affinity": seg.affinity,
        "seg_segment": seg.segment,
        "rate_scale": np.array([basket_rate_scale(cust, beh, cfg.txn_per_customer)]),
        "article_ids": article_ids,
        "customer_hex": customer_hex.to_numpy().astype("S64"),
        "has_image": has_image,
    }
    np.savez(state / STATE_FILE, **arrays)
    meta = {
        "scale": cfg.to_dict(),
        "seed": seed,
        "day0": DAY0.isoformat(),
        "n_transactions": len(txn.day),
        "generator_version": 1,
    }
    (state / META_FILE).write_text(json.dumps(meta, indent=1))
    progress("done", 1, 1)
    return meta


def _write_articles(articles: pl.DataFrame, path: Path) -> None:
    articles.with_columns(pl.col("article_id").cast(pl.String).str.zfill(10)).write_csv(path)


def _write_customers(customers: pl.DataFrame, path: Path) -> None:
    customers.write_csv(path)


def _write_transactions(
    txn: Transactions,
    article_ids: np.ndarray,
    customer_hex: pl.Series,
    path: Path,
    progress: Progress,
) -> None:
    """Rows in date order, a customer's rows of a day together, written in chunks."""
    order = np.lexsort((txn.customer, txn.day))
    day0 = np.datetime64(DAY0.isoformat(), "D")
    with open(path, "wb") as fh:
        for start in range(0, len(order), CSV_CHUNK_ROWS):
            idx = order[start : start + CSV_CHUNK_ROWS]
            chunk = pl.DataFrame(
                {
                    "t_dat": (day0 + txn.day[idx].astype("timedelta64[D]")),
                    "customer_id": customer_hex.gather(txn.customer[idx]),
                    "article_id": article_ids[txn.article[idx]],
                    "price": np.round(txn.price[idx], 16),
                    "sales_channel_id": txn.channel[idx],
                }
            ).with_columns(pl.col("t_dat").cast(pl.Date))
            chunk.write_csv(fh, include_header=start == 0)
            progress("writing transactions", min(start + CSV_CHUNK_ROWS, len(order)), len(order))


def _write_sample_submission(
    txn: Transactions, article_ids: np.ndarray, customer_hex: pl.Series, path: Path
) -> None:
    """Every customer gets the same 12 articles, as in Kaggle's sample file."""
    top = np.argsort(-np.bincount(txn.article, minlength=len(article_ids)), kind="stable")[:12]
    prediction = " ".join(f"{int(a):010d}" for a in article_ids[top])
    pl.DataFrame({"customer_id": customer_hex, "prediction": prediction}).write_csv(path)
