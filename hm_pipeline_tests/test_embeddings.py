"""Embeddings: one finite unit-norm row per catalogue article, caching, fallbacks, and
neighbours that make sense; product-similarity sources built on them."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from hm_pipeline.embeddings import common
from hm_pipeline.embeddings.copurchase import copurchase_embeddings, copurchase_pairs
from hm_pipeline.embeddings.image import ImageConfig, image_embeddings
from hm_pipeline.embeddings.metadata import metadata_embeddings
from hm_pipeline.embeddings.text import article_texts, default_model_path, text_embeddings
from hm_pipeline.ingest import image_manifest

CUTOFF = date(2020, 9, 16)


def test_check_names_each_problem() -> None:
    table = common.to_table(np.array([1, 2, 2]), np.array([[1, 0], [np.nan, 0], [0.5, 0]]), "m")
    problems = " ".join(common.check(table, pl.Series([1, 2, 3]), unit_norm=True))
    assert "duplicate" in problems
    assert "1 catalogue articles have no row (e.g. 3)" in problems
    assert "non-finite" in problems
    assert "not unit norm" in problems
    ok = common.to_table(np.array([1, 2]), np.array([[1.0, 0], [0, 1.0]]), "m")
    assert common.check(ok, pl.Series([1, 2]), unit_norm=True) == []


def test_fill_from_groups_uses_the_nearest_group() -> None:
    x = np.array([[1.0, 0], [0, 0], [0, 1.0], [0, 0], [0, 0]], np.float32)
    known = np.array([True, False, True, False, False])
    code = np.array([1, 1, 2, 3, 4])
    ptype = np.array([1, 1, 1, 1, 9])
    out, origin = common.fill_from_groups(x, known, [code, ptype])
    assert np.allclose(out[1], [1, 0])  # its product code's mean
    assert origin[1] == "fallback: mean of product_code"
    assert np.allclose(out[3], np.array([1, 1]) / np.sqrt(2))  # product type 1's mean
    assert origin[3] == "fallback: mean of product_type"
    assert origin[4] == "fallback: mean of catalogue"
    assert list(origin[[0, 2]]) == ["model", "model"]


def test_metadata_embeddings_group_by_attributes(tiny_tables) -> None:
    arts = tiny_tables["articles"]
    table = metadata_embeddings(arts)
    assert common.check(table, arts["article_id"], unit_norm=True) == []
    sanity = common.neighbour_agreement(table, arts)
    assert sanity["nn5_same_product_type"] > 3 * sanity["random_same_product_type"]
    assert table.equals(metadata_embeddings(arts))  # deterministic


def test_copurchase_sees_only_the_history_before_the_week(tiny_tables) -> None:
    arts, tx = tiny_tables["articles"], tiny_tables["transactions"]
    table = copurchase_embeddings(tx.lazy(), arts, CUTOFF)
    assert common.check(table, arts["article_id"], unit_norm=True) == []
    truncated = copurchase_embeddings(tx.filter(pl.col("t_dat") < CUTOFF).lazy(), arts, CUTOFF)
    assert table.equals(truncated)
    assert table["origin"].str.starts_with("fallback").any()  # unsold articles are flagged


def test_copurchase_pairs_by_hand() -> None:
    tx = pl.DataFrame(
        {
            "t_dat": [date(2020, 9, 10)] * 3 + [date(2020, 9, 14)] + [date(2020, 9, 16)],
            "customer_id": [1, 1, 2, 2, 1],
            "article_id": [10, 11, 10, 11, 12],  # 12 is bought on the cutoff: not seen
        }
    ).with_columns(pl.col("customer_id", "article_id").cast(pl.Int32))
    pairs = copurchase_pairs(tx.lazy(), CUTOFF, 30).sort("article_id", "article_id_b")
    assert pairs.rows() == [(10, 11, 2), (11, 10, 2)]


@pytest.fixture(scope="module")
def text_table(tiny_tables, tmp_path_factory):
    cache = tmp_path_factory.mktemp("text_cache")
    arts = tiny_tables["articles"]
    table, info = text_embeddings(arts, default_model_path(), cache)
    return arts, table, info, cache


def test_text_embeddings_are_real_and_cached(text_table) -> None:
    arts, table, info, cache = text_table
    assert common.check(table, arts["article_id"], unit_norm=True) == []
    assert info["texts_encoded"] == article_texts(arts)["text_hash"].n_unique()
    assert info["dim"] == 384
    sanity = common.neighbour_agreement(table, arts)
    assert sanity["nn5_same_product_type"] > 3 * sanity["random_same_product_type"]
    again, info2 = text_embeddings(arts, default_model_path(), cache)
    assert info2["texts_encoded"] == 0 and info2["articles_from_cache"] == arts.height
    assert again.equals(table)


def test_changed_text_is_encoded_again(text_table) -> None:
    arts, table, _, cache = text_table
    changed = arts.with_columns(
        pl.when(pl.int_range(pl.len()) < 3)
        .then(pl.lit("a completely new description"))
        .otherwise(pl.col("detail_desc"))
        .alias("detail_desc")
    )
    got, info = text_embeddings(changed, default_model_path(), cache)
    assert info["texts_encoded"] == 3
    assert not np.allclose(got["embedding"][0].to_numpy(), table["embedding"][0].to_numpy())
    assert got["embedding"][5].to_list() == table["embedding"][5].to_list()


def test_texts_are_encoded_in_article_order(monkeypatch, tmp_path) -> None:
    """The model batches texts by length and a bf16 vector depends on its batch's padding: the
    texts must reach the model in the same order every run (first appearance by article id)."""
    from hm_pipeline.embeddings import text as text_mod

    seen: list[list[str]] = []

    def fake_encode(texts, model_path, batch_size, precision):
        seen.append(list(texts))
        return np.ones((len(texts), 4), np.float32)

    monkeypatch.setattr(text_mod, "encode", fake_encode)
    n = 60_000
    arts = pl.DataFrame(
        {"article_id": np.arange(n, dtype=np.int32)}
        | {c: [f"{c} {(i * 7919) % 20_000}" for i in range(n)] for c in text_mod.TEXT_FIELDS}
    )
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"x")
    for run in range(2):
        text_embeddings(arts, str(model), tmp_path / f"cache{run}", precision="fp32")
    expected = article_texts(arts).unique("text_hash", maintain_order=True)["text"].to_list()
    assert seen[0] == expected and seen[1] == expected


def test_text_model_is_configurable_and_missing_models_are_named(tiny_tables, tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="no_such_model"):
        text_embeddings(tiny_tables["articles"].head(3), str(tmp_path / "no_such_model"), tmp_path)


@pytest.fixture(scope="module")
def image_result(tiny_world: Path, tiny_tables):
    arts = tiny_tables["articles"]
    manifest = image_manifest(arts["article_id"], tiny_world)
    cfg = ImageConfig(epochs=4, max_train_images=1000, batch_size=64, lr=3e-3)
    return arts, manifest, image_embeddings(arts, manifest, tiny_world, cfg)


def test_image_embeddings_learned_from_the_catalogue(image_result) -> None:
    arts, manifest, (table, info, _) = image_result
    assert common.check(table, arts["article_id"], unit_norm=True) == []
    assert info["weights"] == "learned from the catalogue"
    # the attribute heads learn something real: above the majority class on held-out images
    assert info["val_accuracy_colour_group_code"] > info["majority_colour_group_code"] + 0.1
    without = manifest.filter(~pl.col("has_image"))["article_id"]
    assert without.len() > 0, "the tiny world has articles without an image"
    origins = table.filter(pl.col("article_id").is_in(without.implode()))["origin"]
    assert origins.str.starts_with("fallback").all()
    assert (table["origin"] == "model").sum() == manifest["has_image"].sum()


def test_image_checkpoint_is_loaded_not_trained(image_result, tiny_world: Path, tmp_path) -> None:
    import torch

    arts, manifest, (_, _, model) = image_result
    ckpt = tmp_path / "backbone.pth"
    torch.save(model.backbone.state_dict(), ckpt)
    cfg = ImageConfig(checkpoint_path=str(ckpt))
    table, info, _ = image_embeddings(arts.head(50), manifest, tiny_world, cfg)
    assert info["weights"].startswith("checkpoint sha1 ")
    assert common.check(table, arts.head(50)["article_id"], unit_norm=True) == []
    with pytest.raises(FileNotFoundError, match="does not exist"):
        image_embeddings(arts.head(5), manifest, tiny_world, ImageConfig(checkpoint_path="x.pth"))
