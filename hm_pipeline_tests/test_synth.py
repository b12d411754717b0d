"""The synthetic world: formats, determinism, shape, and the oracle."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from hm_pipeline import schema as S
from hm_pipeline.metrics import map_at_k
from hm_pipeline.synth.oracle import World, oracle_top_k
from hm_pipeline.synth.report import world_figures
from hm_pipeline.synth.world import generate_world
from hm_pipeline_tests.conftest import TINY_SEED

TXN_SCHEMA = {
    "t_dat": pl.Date,
    "customer_id": pl.String,
    "article_id": pl.Int64,
    "price": pl.Float64,
    "sales_channel_id": pl.Int8,
}


def _digest(folder: Path) -> dict[str, str]:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_same_seed_same_bytes_other_seed_other_bytes(tiny_world: Path, tmp_path: Path) -> None:
    generate_world("tiny", TINY_SEED, tmp_path / "again")
    assert _digest(tmp_path / "again") == _digest(tiny_world)
    generate_world("tiny", TINY_SEED + 1, tmp_path / "other")
    other = _digest(tmp_path / "other")
    assert other[S.TRANSACTIONS_FILE] != _digest(tiny_world)[S.TRANSACTIONS_FILE]


def test_images_are_the_same_drawn_in_threads_or_one_batch_at_a_time(
    tiny_world: Path, tmp_path: Path
) -> None:
    from hm_pipeline.synth.images import write_images

    articles = pl.read_csv(tiny_world / S.ARTICLES_FILE, schema_overrides={"article_id": pl.Int64})
    has = np.arange(articles.height) % 5 != 0
    for workers in (1, 2, 3):
        write_images(
            articles, has, tmp_path / str(workers) / "images", (16, 24), 7, None, 3, workers
        )
    assert len(_digest(tmp_path / "1")) == has.sum()
    assert _digest(tmp_path / "2") == _digest(tmp_path / "1") == _digest(tmp_path / "3")


def test_files_have_the_kaggle_layout(tiny_world: Path) -> None:
    for name in (S.ARTICLES_FILE, S.CUSTOMERS_FILE, S.TRANSACTIONS_FILE, S.SAMPLE_SUBMISSION_FILE):
        assert (tiny_world / name).stat().st_size > 0
    header = (tiny_world / S.ARTICLES_FILE).read_text().splitlines()[0]
    assert header.split(",") == S.ARTICLES_COLUMNS
    assert (tiny_world / S.CUSTOMERS_FILE).read_text().splitlines()[0].split(
        ","
    ) == S.CUSTOMERS_COLUMNS
    assert (tiny_world / S.TRANSACTIONS_FILE).open().readline().strip().split(
        ","
    ) == S.TRANSACTIONS_COLUMNS

    arts = pl.read_csv(tiny_world / S.ARTICLES_FILE, schema_overrides={"article_id": pl.String})
    assert arts["article_id"].str.len_chars().eq(10).all()
    assert arts["article_id"].str.starts_with("0").all()  # the leading zero of the real file
    ids = arts["article_id"].cast(pl.Int64)
    assert ids.n_unique() == arts.height
    assert (ids // 1000 == arts["product_code"]).all()
    assert arts["detail_desc"].null_count() >= 1 or arts.height < 500
    assert arts["detail_desc"].str.contains(",").any()

    cust = pl.read_csv(tiny_world / S.CUSTOMERS_FILE, infer_schema=False)
    assert cust["customer_id"].str.contains(S.CUSTOMER_HEX_PATTERN).all()
    assert cust["customer_id"].is_sorted()
    assert set(cust["FN"].drop_nulls().unique()) == {"1.0"}
    assert cust["age"].null_count() > 0 and cust["age"].drop_nulls().str.ends_with(".0").all()

    tx = pl.read_csv(tiny_world / S.TRANSACTIONS_FILE, schema=TXN_SCHEMA)
    assert tx["t_dat"].min() >= date(2018, 9, 20) and tx["t_dat"].max() == date(2020, 9, 22)
    assert tx["t_dat"].is_sorted()
    assert not tx["customer_id"].is_in(cust["customer_id"].implode()).not_().any()
    assert set(tx["sales_channel_id"].unique()) == {1, 2}
    assert tx.is_duplicated().any()  # identical rows are real: several units of one article

    sub = pl.read_csv(tiny_world / S.SAMPLE_SUBMISSION_FILE)
    assert sub.height == cust.height
    assert sub["prediction"].str.split(" ").list.len().eq(12).all()


def test_images_follow_the_path_scheme_and_some_are_missing(tiny_world: Path) -> None:
    arts = pl.read_csv(
        tiny_world / S.ARTICLES_FILE,
        columns=["article_id"],
        schema_overrides={"article_id": pl.Int64},
    )
    exists = [(tiny_world / S.article_image_relpath(a)).exists() for a in arts["article_id"]]
    assert 0 < exists.count(False) < 0.02 * len(exists)
    assert S.article_image_relpath(108775015) == "images/010/0108775015.jpg"


def test_world_figures_are_in_realistic_ranges(tiny_world: Path) -> None:
    f = world_figures(tiny_world)
    assert 0.6 < f["share_online"] < 0.8
    assert f["share_pairs_single_date"] > 0.8  # 0.92 on small, 0.958 real; tiny has few articles
    assert f["customers_with_transactions"] > 0.95 * f["customers"]
    assert f["txn_per_customer_mean"] > 1.8 * f["txn_per_customer_median"]  # heavy tail
    assert 0.02 < f["share_identical_rows"] < 0.2


def _txn(raw: Path) -> pl.LazyFrame:
    return pl.scan_csv(raw / S.TRANSACTIONS_FILE, schema=TXN_SCHEMA)


def test_oracle_beats_last_week_popularity(tiny_world: Path) -> None:
    week = date(2020, 9, 2)  # two weeks pooled for enough buyers in a tiny world
    txn = _txn(tiny_world)
    truth = txn.filter(pl.col("t_dat") >= week).select("customer_id", "article_id").collect()
    buyers = truth["customer_id"].unique().sort()
    oracle = oracle_top_k(tiny_world, txn, week, buyers)
    assert oracle.group_by("customer_id").len()["len"].eq(12).all()
    assert oracle["probability"].is_between(0, 1).all()
    top = (
        txn.filter(pl.col("t_dat").is_between(week - timedelta(days=7), week, closed="left"))
        .group_by("article_id")
        .len()
        .sort(["len", "article_id"], descending=[True, False])
        .head(12)
        .with_columns(pl.int_range(1, 13).alias("rank"))
        .collect()
    )
    popular = pl.DataFrame({"customer_id": buyers}).join(top, how="cross")
    assert map_at_k(oracle, truth) > 1.5 * map_at_k(popular, truth)


def test_oracle_reads_nothing_from_the_week_or_later(tiny_world: Path) -> None:
    week = date(2020, 9, 16)
    txn = _txn(tiny_world)
    buyers = txn.filter(pl.col("t_dat") >= week).select("customer_id").unique().sort("customer_id")
    buyers = buyers.collect()["customer_id"].head(50)
    before = oracle_top_k(tiny_world, txn, week, buyers)
    # Rewrite everything from the week on: every buyer buys the same odd article many times.
    arts = World.load(tiny_world).arrays["article_ids"]
    future = pl.DataFrame(
        {
            "t_dat": [week + timedelta(days=i % 7) for i in range(500)],
            "customer_id": [buyers[i % len(buyers)] for i in range(500)],
            "article_id": [int(arts[-1])] * 500,
            "price": [0.5] * 500,
            "sales_channel_id": [2] * 500,
        },
        schema=TXN_SCHEMA,
    )
    changed = pl.concat([txn.filter(pl.col("t_dat") < week), future.lazy()])
    after = oracle_top_k(tiny_world, changed, week, buyers)
    assert before.equals(after)


def test_oracle_top_k_is_the_top_of_the_dense_probabilities(tiny_world: Path) -> None:
    from hm_pipeline.synth.oracle import (
        item_probabilities,
        recent_purchases,
        week_of,
        week_sampler,
    )

    week = date(2020, 9, 16)
    txn = _txn(tiny_world)
    buyers = txn.filter(pl.col("t_dat") >= week).select("customer_id").unique().sort("customer_id")
    buyers = buyers.collect()["customer_id"].head(40)
    got = oracle_top_k(tiny_world, txn, week, buyers, k=20, chunk=7)  # chunks on two threads
    # the same by the definition: every article's 1 - exp(-E[items] P(item)), sorted
    world = World.load(tiny_world)
    all_hex = world.arrays["customer_hex"].astype("U64").tolist()
    rows = np.array([all_hex.index(h) for h in buyers.to_list()])
    slots = world.behaviour.history_slots
    history = recent_purchases(txn, buyers, world.arrays["article_ids"], week, slots)
    sampler = week_sampler(world, week_of(week))
    item, n_items = item_probabilities(world, sampler, rows, history, week_of(week))
    prob = -np.expm1(-item.astype(np.float64) * n_items[:, None])
    want = -np.sort(-prob, axis=1)[:, :20]
    np.testing.assert_allclose(
        got["probability"].to_numpy().reshape(len(buyers), 20), want, rtol=1e-6, atol=0
    )
    assert got["customer_id"].to_list() == np.repeat(buyers.to_numpy(), 20).tolist()
    empty = oracle_top_k(tiny_world, txn, week, buyers.head(0))
    assert empty.is_empty() and empty.columns == got.columns


def test_oracle_rejects_a_week_not_starting_on_wednesday(tiny_world: Path) -> None:
    with pytest.raises(ValueError, match="Wednesday"):
        oracle_top_k(
            tiny_world, _txn(tiny_world), date(2020, 9, 17), pl.Series([], dtype=pl.String)
        )
