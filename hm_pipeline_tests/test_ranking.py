"""The second stage: the union, the feature table (no leakage), training sets, and both
rankers learning a signal planted in the features."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
import polars as pl
import pytest

from hm_pipeline.candidates import REGISTRY, SourceContext
from hm_pipeline.features import article_features, customer_features
from hm_pipeline.metrics import map_at_k
from hm_pipeline.ranking import dlrm, lgbm, training
from hm_pipeline.ranking.features import (
    CATEGORICALS,
    FeatureInputs,
    _similarities,
    build_features,
    feature_columns,
    feature_table,
    sorted_by_keys,
)
from hm_pipeline.ranking.union import candidate_union, source_names, union_recall
from hm_pipeline_tests.conftest import embeddings_for

WEEK = date(2020, 9, 16)


def _cands(rows):
    return pl.DataFrame(rows, schema=["customer_id", "article_id", "score", "rank"], orient="row")


def test_union_keeps_every_source_score_and_rank() -> None:
    a = _cands([(1, 10, 0.9, 1), (1, 11, 0.5, 2), (1, 12, 0.1, 3)])
    b = _cands([(1, 11, 7.0, 1), (2, 10, 3.0, 1)])
    u = candidate_union({"a": a, "b": b}, per_source=2).collect()
    assert source_names(u) == ["a", "b"]
    assert u.select("customer_id", "article_id").rows() == [(1, 10), (1, 11), (2, 10)]
    row = u.filter((pl.col("customer_id") == 1) & (pl.col("article_id") == 11)).row(0, named=True)
    assert (row["a_rank"], row["b_rank"], row["n_sources"], row["best_rank"]) == (2, 1, 2, 1)
    assert (row["a_score"], row["b_score"]) == (0.5, 7.0)
    assert u.filter(pl.col("article_id") == 10)["a_score"].to_list() == [pytest.approx(0.9), None]
    assert u.filter(pl.col("customer_id") == 2)["a_score"].is_null().all()
    labels = pl.DataFrame({"customer_id": [1, 1, 2], "article_id": [11, 12, 99]})
    assert union_recall(u, labels)["recall"] == pytest.approx(1 / 3)


def test_training_sample_keeps_positives_and_caps_negatives() -> None:
    feats = pl.DataFrame(
        {"customer_id": [1] * 50 + [2] * 5, "article_id": list(range(50)) + list(range(5))}
    ).with_columns(pl.lit(1.0).alias("f"))
    labels = pl.DataFrame({"customer_id": [1, 1], "article_id": [3, 7]})
    out = training.sample_training(training.label(feats, labels), max_negatives=10, seed=3)
    assert set(out["customer_id"]) == {1}  # customer 2 has no positive
    assert out["label"].sum() == 2 and out.height == 12
    again = training.sample_training(training.label(feats, labels), max_negatives=10, seed=3)
    assert out.equals(again)


def test_sorted_by_keys_sorts_only_what_is_out_of_order() -> None:
    ordered = pl.DataFrame(
        {"customer_id": [1, 1, 2, 5], "article_id": [3, 9, 1, 1], "f": [0, 1, 2, 3]}
    )
    assert sorted_by_keys(ordered) is ordered
    for rows in ([1, 0, 2, 3], [0, 1, 3, 2], [3, 2, 1, 0]):
        shuffled = ordered[rows]
        assert sorted_by_keys(shuffled).equals(ordered)
    twice = pl.concat([ordered, ordered[1:2]])  # a repeated pair is not "in order"
    assert sorted_by_keys(twice).equals(twice.sort("customer_id", "article_id"))


def test_training_rows_read_lazily_equal_the_eager_sample(tmp_path) -> None:
    """Choosing the rows on the keys, then reading their features from the parquet file, gives
    the eager sample; a week's table read a range of customers at a time gives all its rows."""
    rng = np.random.default_rng(0)
    n = 6_000
    feats = pl.DataFrame(
        {
            "customer_id": rng.integers(0, 300, n).astype(np.int32),
            "article_id": rng.integers(0, 500, n).astype(np.int32),
            "f": rng.random(n),
        }
    ).unique(["customer_id", "article_id"])
    labels = feats.sample(400, seed=1).select("customer_id", "article_id")
    feats.write_parquet(tmp_path / "f.parquet")
    eager = training.sample_training(training.label(feats, labels), 5, seed=2)
    lazy = training.training_rows(pl.scan_parquet(tmp_path / "f.parquet"), labels, 5, seed=2)
    assert lazy.equals(eager) and 0 < lazy.height < feats.height
    chunks = list(training.customer_chunks(pl.scan_parquet(tmp_path / "f.parquet"), 70))
    assert len(chunks) == 5
    assert pl.concat(chunks).equals(feats.sort("customer_id", "article_id"))


@pytest.fixture(scope="module")
def week_features(tiny_tables, tiny_catalogue_embeddings):
    """The tiny world's union and features for WEEK from two sources, from the full data and
    from the data truncated at WEEK."""
    arts, cust, tx = tiny_tables["articles"], tiny_tables["customers"], tiny_tables["transactions"]

    def build(txs: pl.DataFrame) -> pl.DataFrame:
        emb = embeddings_for(tiny_catalogue_embeddings, txs, arts, WEEK)
        ctx = SourceContext(arts, cust, embeddings=emb)
        buyers = tx.filter(pl.col("t_dat") >= WEEK)["customer_id"].unique().sort()
        srcs = {
            n: REGISTRY[n](k=30).generate(txs.lazy(), buyers, WEEK, ctx)
            for n in ("popularity_last_week", "repurchase", "similar_text")
        }
        inp = FeatureInputs(
            WEEK,
            txs.lazy(),
            arts,
            cust,
            customer_features(txs.lazy(), WEEK),
            article_features(txs.lazy(), cust.lazy(), WEEK),
            {k: v for k, v in emb.items() if k != "image_embeddings"},
        )
        union = candidate_union(srcs, 20)
        return build_features(union, inp, chunk=97), union, inp

    full, union, inp = build(tx)
    return full, build(tx.filter(pl.col("t_dat") < WEEK))[0], union, inp


def test_features_see_nothing_of_the_week(week_features) -> None:
    full, truncated, _, _ = week_features
    assert full.height > 0
    assert full.equals(truncated)


def test_feature_table_columns(week_features) -> None:
    full, *_ = week_features
    dense, cats = feature_columns(full)
    assert set(cats) <= set(CATEGORICALS) and len(cats) >= 10
    for col in [
        "repurchase_rank",
        "ca_article_count",
        "ca_code_days_since",
        "x_age_diff",
        "x_price_ratio",
        "x_channel_match",
        "sim_text",
        "sim_copurchase",
        "c_t_transactions_3m",
        "a_u_customers_1y",
    ]:
        assert col in dense, col
    # a repurchase candidate was bought by the customer before
    rep = full.filter(pl.col("repurchase_rank").is_not_null())
    assert (rep["ca_article_count"] >= 1).all()
    assert not full.select("customer_id", "article_id").is_duplicated().any()


def test_feature_rows_carry_their_own_customers_and_articles_values(week_features) -> None:
    """The chunks look each table up by position instead of joining: every row still gets its
    own customer's and article's columns (null where a table lacks them), its own purchase
    counts, whatever the order of the union's rows, and a table with a repeated key is
    refused rather than multiplying rows."""
    full, _, union, inp = week_features
    keys = ["customer_id", "article_id"]
    shuffled = union.collect().sample(fraction=1.0, shuffle=True, seed=3)
    assert build_features(shuffled.lazy(), inp, chunk=53).equals(full)

    # a third of the customers lose their customer features: nulls there, the rest unchanged
    cfeat = inp.customer_features.collect()
    dropped = cfeat["customer_id"].gather_every(3)
    fewer = replace(
        inp, customer_features=cfeat.lazy().filter(~pl.col("customer_id").is_in(dropped.implode()))
    )
    got = build_features(union, fewer, chunk=53)
    c_cols = [f"c_{c}" for c in cfeat.columns if c != "customer_id"]
    gone = pl.col("customer_id").is_in(dropped.implode())
    lost = got.filter(gone)
    assert 0 < lost.height < got.height
    assert lost.select(c_cols).null_count().row(0) == (lost.height,) * len(c_cols)
    assert got.filter(~gone).equals(full.filter(~gone))

    def joined(table: pl.DataFrame, on: str, prefix: str) -> pl.DataFrame:
        cols = {c: f"{prefix}{c}" for c in table.columns if c != on}
        want = full.select(keys).join(table.rename(cols), on=on, how="left").sort(keys)
        return want.select(*keys, *cols.values())

    for table, on, prefix in [
        (cfeat, "customer_id", "c_"),
        (inp.article_features.collect(), "article_id", "a_"),
    ]:
        want = joined(table, on, prefix)
        got = full.select(want.columns)
        assert got.equals(want.cast(dict(got.schema)))

    bought = (
        inp.history.filter(pl.col("t_dat") < inp.cutoff)
        .group_by(keys)
        .agg(pl.len().alias("n"))
        .collect()
    )
    counts = full.select(*keys, "ca_article_count").join(bought, on=keys, how="left")
    assert counts["n"].is_not_null().any()
    assert counts["ca_article_count"].equals(counts["n"].cast(pl.Int32), check_names=False)

    twice = replace(inp, article_features=pl.concat([inp.article_features.collect()] * 2).lazy())
    with pytest.raises(ValueError, match="article_features: article_id .* more than once"):
        build_features(union, twice, chunk=53)


def test_feature_table_for_the_lake_is_the_chunks_and_counts_their_columns(week_features) -> None:
    """ranker_features' table: built only as the IO manager reads its chunks, the same rows as
    the whole table, and its metadata (asked after the last chunk) the number of columns."""
    full, _, union, inp = week_features
    table = feature_table(union, inp, chunk=53)
    assert table.metadata() == {"columns": 0}
    assert pl.concat(list(table.chunks)).equals(full)
    assert table.metadata() == {"columns": full.width}


def test_similarity_features_match_a_row_by_row_reference() -> None:
    """Each row's cosine to its customer's weighted recent purchases, per embedding, computed
    in blocks; two embeddings over differently ordered catalogues; an article without a vector
    gets 0."""
    rng = np.random.default_rng(0)

    def table(ids: np.ndarray, dim: int) -> pl.DataFrame:
        x = rng.standard_normal((len(ids), dim)).astype(np.float32)
        return pl.DataFrame({"article_id": ids, "embedding": list(x)}).with_columns(
            pl.col("embedding").cast(pl.Array(pl.Float32, dim))
        )

    emb = {"a": table(np.arange(0, 58, 2), 8), "b": table(np.arange(12, 70, 2), 5)}
    recent = pl.DataFrame(
        {"customer_id": [1, 1, 2, 3], "article_id": [10, 20, 30, 12], "weight": [1.0, 0.5, 2.0, 1]}
    )
    frame = pl.DataFrame(
        {"customer_id": [1, 1, 1, 2, 2, 4], "article_id": [12, 14, 40, 10, 58, 20]}
    )
    got = _similarities(frame, recent, emb, block=4)
    for name, t in emb.items():
        vec = dict(zip(t["article_id"].to_list(), t["embedding"].to_numpy(), strict=True))
        want = []
        for c, a in frame.iter_rows():
            mine = recent.filter(pl.col("customer_id") == c)
            pairs = zip(mine["article_id"], mine["weight"], strict=True)
            known = [(w, vec[r]) for r, w in pairs if r in vec]
            if a not in vec or not known:
                want.append(0.0)
                continue
            prof = sum(w * v for w, v in known)
            want.append(float(prof @ vec[a]) / float(np.linalg.norm(prof)))
        np.testing.assert_allclose(got[f"sim_{name}"], want, rtol=1e-5, atol=1e-6)
    assert got["sim_a"][4] == 0.0 and got["sim_b"][3] == 0.0  # 58, 10: no vector there
    assert got["sim_a"][3] != 0.0 and got["sim_a"][5] == 0.0  # customer 4: no purchase


def _planted(n_customers: int, seed: int, week: str) -> pl.DataFrame:
    """40 candidates per customer; the bought ones have a high 'signal' feature (noisy) and a
    categorical that matters."""
    rng = np.random.default_rng(seed)
    n = n_customers * 40
    label = (rng.random(n) < 0.08).astype(np.int8)
    cat = rng.integers(1, 6, n)
    label = np.where(cat == 5, np.maximum(label, (rng.random(n) < 0.3)), label).astype(np.int8)
    return pl.DataFrame(
        {
            "customer_id": np.repeat(np.arange(n_customers), 40).astype(np.int32),
            "article_id": np.tile(np.arange(40), n_customers).astype(np.int32),
            "signal": label * 1.0 + rng.normal(0, 0.7, n),
            "noise": rng.normal(0, 1, n),
            "maybe": np.where(rng.random(n) < 0.3, np.nan, rng.normal(0, 1, n)),
            "cat_colour_group_code": cat.astype(np.int32),
            "label": label,
            "week": week,
        }
    ).with_columns(pl.col("maybe").fill_nan(None))


def _map(frame: pl.DataFrame, scores: np.ndarray) -> float:
    top = training.ranked(frame, scores, 12)
    return map_at_k(top, frame.filter(pl.col("label") == 1).select("customer_id", "article_id"), 12)


def test_lightgbm_learns_the_planted_signal() -> None:
    train, valid, test = (_planted(300, s, w) for s, w in [(0, "a"), (1, "b"), (2, "c")])
    booster, info = lgbm.train_lgbm(train, valid, lgbm.LGBMConfig(num_boost_round=100))
    assert info["best_iteration"] >= 1
    learned = _map(test, lgbm.predict(booster, test))
    random = _map(test, np.random.default_rng(0).random(test.height))
    assert learned > 2 * random
    gain = info["importance_gain"]
    assert gain["signal"] > gain["noise"]


def test_lightgbm_can_learn_from_the_latest_week_alone() -> None:
    older, latest, test = (
        _planted(n, s, w) for n, s, w in [(300, 0, "a"), (200, 1, "b"), (300, 2, "c")]
    )
    booster, info = lgbm.train_lgbm(older, latest, lgbm.LGBMConfig(learn_from_latest=True))
    # the latest week's rows learn, the older week's stop the boosting; no refit on both
    assert info["train_rows"] == latest.height and info["valid_rows"] == older.height
    assert "refit_rows" not in info
    random = _map(test, np.random.default_rng(0).random(test.height))
    assert _map(test, lgbm.predict(booster, test)) > 2 * random
    _, default = lgbm.train_lgbm(older, latest, lgbm.LGBMConfig())
    assert default["train_rows"] == older.height
    assert default["refit_rows"] == older.height + latest.height


@pytest.mark.parametrize("categorical", [False, True])
def test_compiled_lightgbm_scores_every_row_as_lightgbm_does(categorical: bool) -> None:
    def with_gaps(frame: pl.DataFrame, seed: int) -> pl.DataFrame:
        # a feature whose missing values mean something, so that the trees route NaN
        rng = np.random.default_rng(seed)
        gone = (frame["label"].to_numpy() == 1) & (rng.random(frame.height) < 0.6)
        return frame.with_columns(
            pl.Series("gaps", np.where(gone, np.nan, rng.normal(0, 1, frame.height))).fill_nan(None)
        )

    train, valid, test = (
        with_gaps(_planted(300, s, w), s) for s, w in [(0, "a"), (1, "b"), (2, "c")]
    )
    cfg = lgbm.LGBMConfig(num_boost_round=40, categorical=categorical)
    booster, info = lgbm.train_lgbm(train, valid, cfg)
    assert info["importance_gain"]["gaps"] > 0  # the missing values take part in the splits
    compiled = lgbm.CompiledRanker.of(booster)
    got = compiled(test, chunk=997)  # chunks that do not divide the table
    assert got.shape == (test.height,)
    np.testing.assert_allclose(got, lgbm.predict(booster, test), rtol=0, atol=1e-12)
    # columns found by name, not position
    shuffled = test.select(reversed(test.columns))
    np.testing.assert_array_equal(compiled(shuffled), got)


def test_lightgbm_refuses_queries_over_its_limit() -> None:
    big = _planted(1, 0, "a").sample(40).pipe(lambda f: pl.concat([f] * 251))
    with pytest.raises(ValueError, match="10000 per query"):
        lgbm.train_lgbm(big, None, lgbm.LGBMConfig(num_boost_round=2))


def test_dlrm_learns_the_planted_signal_and_is_seeded() -> None:
    train, valid, test = (_planted(300, s, w) for s, w in [(0, "a"), (1, "b"), (2, "c")])
    cfg = dlrm.DLRMConfig(epochs=4, batch_size=512)
    model, prep, info = dlrm.train_dlrm(train, valid, cfg)
    learned = _map(test, dlrm.predict(model, prep, test))
    random = _map(test, np.random.default_rng(0).random(test.height))
    assert learned > 2 * random
    assert 1 <= info["best_epoch"] <= 4
    model2, _, info2 = dlrm.train_dlrm(train, valid, cfg)
    assert info["losses"] == info2["losses"]
    # unseen categorical values and nulls map to index 0, not a crash
    odd = test.with_columns(pl.lit(99, pl.Int32).alias("cat_colour_group_code"))
    assert np.isfinite(dlrm.predict(model, prep, odd)).all()
    # the model runs on batches inside each chunk: every row scored once, in order
    whole = dlrm.predict(model, prep, test, chunk=test.height, batch=test.height)
    assert len(whole) == test.height
    np.testing.assert_allclose(dlrm.predict(model, prep, test, chunk=1000, batch=77), whole, 1e-5)


def test_assemble_uses_only_earlier_weeks() -> None:
    feats = {w: _planted(20, i, w).drop("label", "week") for i, w in enumerate(["w1", "w2", "w3"])}
    labels = {
        w: _planted(20, i, w).filter(pl.col("label") == 1).select("customer_id", "article_id")
        for i, w in enumerate(["w1", "w2", "w3"])
    }
    train, valid = training.assemble(feats, labels, "w3", 2, 30)
    assert set(train["week"]) == {"w1"} and set(valid["week"]) == {"w2"}
    train, valid = training.assemble(feats, labels, "w2", 2, 30)
    assert set(train["week"]) == {"w1"} and valid is None


def test_train_rankers_reads_only_earlier_labels_and_saves_what_the_shards_restore(
    tmp_path,
) -> None:
    from hm_pipeline.ranking.shards import restore_scorers

    weeks = ["w1", "w2", "w3"]
    planted = {w: _planted(100, i, w) for i, w in enumerate(weeks)}
    feats = {w: f.drop("label", "week").lazy() for w, f in planted.items()}
    labels = {
        w: f.filter(pl.col("label") == 1).select("customer_id", "article_id")
        for w, f in planted.items()
    }
    with pytest.raises(ValueError, match=r"may not read labels of \['w3'\]"):
        training.train_rankers(feats, labels, "w3", 2, 30)
    with pytest.raises(ValueError, match=r"weeks without labels \['w1'\]"):
        training.train_rankers(feats, {"w2": labels["w2"]}, "w3", 2, 30)
    trained = training.train_rankers(feats, {w: labels[w] for w in weeks[:2]}, "w3", 2, 30)
    # w1 learns, w2 stops the boosting and the DLRM epochs, then LightGBM is refit on both
    assert trained.lightgbm_info["train_rows"] == trained.train_rows
    assert trained.lightgbm_info["refit_rows"] > trained.train_rows
    assert len(trained.dlrm_info["valid_map_at_12_candidates"]) == trained.dlrm_config.epochs
    trained.save(tmp_path / "lgb", tmp_path / "dlrm")
    scorers = restore_scorers(tmp_path / "lgb", tmp_path / "dlrm")
    test = planted["w3"]
    np.testing.assert_allclose(
        scorers["ranker_lightgbm"](test), lgbm.predict(trained.booster, test)
    )
    np.testing.assert_array_equal(
        scorers["ranker_dlrm"](test), dlrm.predict(trained.dlrm_model, trained.dlrm_prep, test)
    )
    assert _map(test, scorers["ranker_lightgbm"](test)) > 1.5 * _map(
        test, np.random.default_rng(0).random(test.height)
    )


def test_union_cap_keeps_the_best_ranked() -> None:
    a = _cands([(1, 10, 0.9, 1), (1, 11, 0.5, 2), (1, 12, 0.1, 3)])
    b = _cands([(1, 12, 7.0, 1), (1, 13, 3.0, 2)])
    u = candidate_union({"a": a, "b": b}, per_source=3, max_per_customer=2).collect()
    # rank 1 in some source: 10 (a) and 12 (b; found by two sources)
    assert u["article_id"].to_list() == [10, 12]


def test_a_shallower_union_is_the_one_a_smaller_per_source_builds() -> None:
    """shallower (how benchmarks/ranker_cuts.py --study depth compares depths on one table)
    gives the union candidate_union builds at that depth: ranks beyond it gone with their
    scores, n_sources and best_rank counted again, pairs found only deeper dropped."""
    from hm_pipeline.ranking.union import shallower

    a = _cands([(1, 10, 0.9, 1), (1, 11, 0.5, 2), (1, 12, 0.1, 3), (2, 10, 0.4, 1)])
    b = _cands([(1, 12, 7.0, 1), (1, 11, 3.0, 2), (1, 13, 2.0, 3), (2, 14, 1.0, 1)])
    c = _cands([(1, 13, 5.0, 1), (1, 10, 4.0, 2), (2, 10, 2.0, 2), (2, 15, 1.0, 3)])
    sources = {"a": a, "b": b, "c": c}
    deep = candidate_union(sources, per_source=3).collect()
    for depth in (1, 2, 3):
        want = candidate_union(sources, per_source=depth).collect()
        got = shallower(deep, depth)
        assert got.height < deep.height or depth == 3
        assert got.equals(want), depth
    assert shallower(deep, None).equals(deep)


def test_keep_best_cuts_a_feature_table_in_the_unions_order() -> None:
    from hm_pipeline.ranking.union import keep_best

    table = pl.DataFrame(
        {
            "customer_id": [1, 1, 1, 2, 2],
            "article_id": [10, 11, 12, 10, 11],
            "best_rank": [3, 1, 1, 2, 5],
            "n_sources": [4, 1, 2, 1, 1],
            "feature": [0.1, 0.2, 0.3, 0.4, 0.5],
        }
    )
    assert keep_best(table, None).equals(table)
    kept = keep_best(table.lazy(), 2).collect().sort("customer_id", "article_id")
    # customer 1: best rank 1 twice (12 found by more sources first), then 11; customer 2 whole
    assert kept.select("customer_id", "article_id").rows() == [(1, 11), (1, 12), (2, 10), (2, 11)]
    assert kept["feature"].to_list() == [0.2, 0.3, 0.4, 0.5]


def test_only_the_prediction_weeks_union_is_cut_by_default() -> None:
    from hm_pipeline.assets.ranking import UnionConfig, union_limit
    from hm_pipeline.partitions import CALENDAR

    week, prediction = str(CALENDAR.validation_weeks[-1]), str(CALENDAR.prediction_week)
    default = UnionConfig()
    assert union_limit(default, week) is None
    assert union_limit(default, prediction) == default.prediction_max_per_customer == 100
    assert union_limit(UnionConfig(max_per_customer=60), prediction) == 60
    assert union_limit(UnionConfig(max_per_customer=60), week) == 60
    assert union_limit(UnionConfig(prediction_max_per_customer=None), prediction) is None


def test_the_prediction_week_is_scored_by_the_validated_ranker(tmp_path) -> None:
    from hm_pipeline.recommend import scoring_rankers, validation_table

    weeks = ["2020-09-09", "2020-09-16", "2020-09-23"]
    with pytest.raises(FileNotFoundError, match="evaluation_report"):
        validation_table(tmp_path, "evaluation", weeks)
    with pytest.raises(FileNotFoundError, match="evaluation_report"):
        scoring_rankers(None, tmp_path, weeks)

    def write(lgb_extra: float) -> None:
        for week, (lgb, dl) in zip(weeks[:2], [(0.03, 0.06), (0.04, 0.02)], strict=True):
            pl.DataFrame(
                {
                    "method": ["ranker_lightgbm", "ranker_dlrm", "oracle"],
                    "map_at_12": [lgb + lgb_extra, dl, 0.9],
                }
            ).write_csv(tmp_path / f"evaluation_{week}.csv")

    write(0.0)
    table = validation_table(tmp_path, "evaluation", weeks)
    assert table.height == 6
    assert scoring_rankers(None, tmp_path, weeks) == ["ranker_dlrm"]  # mean 0.04 against 0.035
    write(0.01)
    assert scoring_rankers(None, tmp_path, weeks) == ["ranker_lightgbm"]
    assert scoring_rankers(["ranker_dlrm", "ranker_lightgbm"], tmp_path / "none", weeks) == [
        "ranker_lightgbm",
        "ranker_dlrm",
    ]
    with pytest.raises(ValueError, match="unknown rankers"):
        scoring_rankers(["xgboost"], tmp_path, weeks)


def test_shards_split_the_customers_and_score_as_one_piece(week_features) -> None:
    from hm_pipeline.ranking.shards import parse_shard, score_shard, shard_keys

    _, _, union, inp = week_features
    scorers = {  # any deterministic function of the features
        "a": lambda f: (
            f["ca_article_count"].fill_null(0).to_numpy() + f["sim_text"].fill_null(0).to_numpy()
        ),
        "b": lambda f: -f["article_id"].to_numpy().astype(float),
    }
    whole = score_shard(union, inp, scorers, "00-of-01", k=12, chunk=50)
    parts = [score_shard(union, inp, scorers, key, k=12, chunk=7) for key in shard_keys(3)]
    customers = [set(p["customer_id"]) for p in parts]
    assert all(customers) and not (customers[0] & customers[1] or customers[1] & customers[2])
    for key, part in zip(shard_keys(3), parts, strict=True):
        index, count = parse_shard(key)
        assert (part["customer_id"] % count == index).all()
    order = ["ranker", "customer_id", "rank"]
    assert pl.concat(parts).sort(order).equals(whole.sort(order))
    assert set(whole["ranker"]) == {"a", "b"}
    assert whole["customer_id"].n_unique() == union.select("customer_id").unique().collect().height
    with pytest.raises(ValueError, match="does not exist"):
        parse_shard("04-of-04")


def test_dlrm_restored_from_the_model_store_scores_the_same(tmp_path) -> None:
    train, valid, test = (_planted(200, s, w) for s, w in [(0, "a"), (1, "b"), (2, "c")])
    cfg = dlrm.DLRMConfig(epochs=1, batch_size=512)
    model, prep, info = dlrm.train_dlrm(train, valid, cfg)
    dlrm.save_dlrm(tmp_path / "dlrm", model, prep, cfg, info)
    restored, prep2 = dlrm.load_dlrm(tmp_path / "dlrm")
    assert prep2.dense == prep.dense and prep2.cats == prep.cats
    np.testing.assert_array_equal(
        dlrm.predict(model, prep, test), dlrm.predict(restored, prep2, test)
    )


def test_both_rankers_restored_as_scorers_score_the_same(tmp_path) -> None:
    from hm_pipeline.ranking.shards import restore_scorers

    train, valid, test = (_planted(200, s, w) for s, w in [(0, "a"), (1, "b"), (2, "c")])
    booster, _ = lgbm.train_lgbm(train, valid, lgbm.LGBMConfig(num_boost_round=20))
    (tmp_path / "lgb").mkdir()
    booster.save_model(str(tmp_path / "lgb" / "model.txt"))
    cfg = dlrm.DLRMConfig(epochs=1, batch_size=512)
    model, prep, info = dlrm.train_dlrm(train, valid, cfg)
    dlrm.save_dlrm(tmp_path / "dlrm", model, prep, cfg, info)
    scorers = restore_scorers(tmp_path / "lgb", tmp_path / "dlrm")
    np.testing.assert_allclose(scorers["ranker_lightgbm"](test), lgbm.predict(booster, test))
    np.testing.assert_array_equal(scorers["ranker_dlrm"](test), dlrm.predict(model, prep, test))
    with pytest.raises(FileNotFoundError, match="no LightGBM ranker"):
        restore_scorers(tmp_path / "missing", tmp_path / "dlrm")
    # only the rankers asked for are loaded: no LightGBM model needed for DLRM alone
    only = restore_scorers(tmp_path / "missing", tmp_path / "dlrm", ["ranker_dlrm"])
    assert list(only) == ["ranker_dlrm"]
    np.testing.assert_array_equal(only["ranker_dlrm"](test), dlrm.predict(model, prep, test))


def test_the_union_built_in_ranges_of_customer_ids_equals_the_whole_union(tmp_path) -> None:
    """Chunked by customer-id range and written chunk by chunk: the same table (rows and
    order) as the union built at once; an empty week gives an empty, typed table."""
    from hm_pipeline.lake import write_parquet_atomic
    from hm_pipeline.ranking.union import union_in_chunks

    rng = np.random.default_rng(3)

    def source(n: int) -> pl.DataFrame:
        frame = pl.DataFrame(
            {
                "customer_id": rng.integers(5, 1000, n).astype(np.int32),
                "article_id": rng.integers(0, 60, n).astype(np.int32),
                "score": rng.random(n).astype(np.float32),
            }
        ).unique(["customer_id", "article_id"])
        return frame.with_columns(
            pl.col("score").rank("ordinal", descending=True).over("customer_id").cast(pl.Int32)
            .alias("rank")
        ).sort("customer_id", "rank")  # fmt: skip

    sources = {"a": source(20_000), "b": source(8_000)}
    whole = candidate_union(sources, per_source=10, max_per_customer=15).collect()
    chunked = union_in_chunks(sources, 10, 15, width=97)
    assert len(chunked.bounds) > 5
    rows = write_parquet_atomic(chunked.table, tmp_path / "u.parquet")
    back = pl.read_parquet(tmp_path / "u.parquet")
    assert rows == whole.height and back.equals(whole)
    assert chunked.table.metadata()["customers"] == whole["customer_id"].n_unique()

    empty = {n: s.head(0) for n, s in sources.items()}
    none = union_in_chunks(empty, 10, None, width=97)
    assert none.bounds == [] and write_parquet_atomic(none.table, tmp_path / "e.parquet") == 0
    assert pl.read_parquet(tmp_path / "e.parquet").schema == whole.schema


def test_final_top12_from_the_lists_top_12_equals_the_blend_of_the_whole_lists() -> None:
    from hm_pipeline.evaluation import blend
    from hm_pipeline.recommend import final_top12

    rng = np.random.default_rng(3)
    rows = []
    for c in range(40):  # ranker lists of 0..50 articles, drawn from the fallback's first 30
        n = int(rng.integers(0, 51)) if c % 4 else int(rng.integers(0, 12))
        arts = rng.choice(np.arange(100, 160) if n > 30 else np.arange(100, 130), n, replace=False)
        rows += [(c, int(a), float(-r), r + 1) for r, a in enumerate(arts)]
    ranker = _cands(rows)
    fallback = _cands([(c, 100 + r, float(-r), r + 1) for c in range(45) for r in range(50)])
    everyone = pl.Series(range(45))
    history = pl.Series(range(30))  # 30..44 are cold
    for cold_fallback in (False, True):
        top = final_top12(ranker.lazy(), fallback.lazy(), everyone, history, cold_fallback)
        # the same from the whole lists
        ranked = ranker.filter(pl.col("customer_id") < 30) if cold_fallback else ranker
        expect = blend(ranked, fallback, k=12).sort("customer_id", "rank")
        assert top.select("customer_id", "rank", "article_id").equals(
            expect.select("customer_id", "rank", "article_id")
        )
        assert top.group_by("customer_id").len()["len"].eq(12).all() and top.height == 45 * 12
        origin = top.join(ranked, on=["customer_id", "article_id"], how="left")
        assert (origin["origin"] == "ranker").to_list() == origin[
            "rank_right"
        ].is_not_null().to_list()


def test_each_recommendation_names_the_sources_that_found_it() -> None:
    from hm_pipeline.recommend import with_sources

    a = _cands([(1, 10, 0.9, 1), (1, 11, 0.5, 2), (2, 12, 0.4, 1)])
    b = _cands([(1, 11, 7.0, 1), (1, 13, 6.0, 2), (2, 12, 3.0, 1)])
    c = _cands([(1, 10, 2.0, 3), (2, 12, 1.0, 2)])
    union = candidate_union({"a": a, "b": b, "c": c}, per_source=3).collect()
    top = pl.DataFrame(
        {
            "customer_id": [1, 1, 1, 2, 2],
            "rank": [1, 2, 3, 1, 2],
            "article_id": [11, 10, 99, 12, 13],  # 99 and (2, 13): a fallback, in no source
        }
    )
    got = with_sources(top, union.lazy()).sort("customer_id", "rank")
    assert got["sources"].to_list() == ["a:2, b:1", "a:1, c:3", "", "a:1, b:1, c:2", ""]
    assert got.select("customer_id", "rank", "article_id").equals(top)


def test_score_frames_ranks_each_frame_by_each_scorer_and_names_the_scorer() -> None:
    """What the rankers asset splits by ranker and the shards write: each frame's top k under
    each scorer, tagged with its name; no frame gives the empty table with the same columns."""
    from hm_pipeline.ranking.shards import SCORED_SCHEMA, score_frames

    rng = np.random.default_rng(0)
    frames = [
        pl.DataFrame({"customer_id": np.repeat([c, c + 1], 5), "article_id": np.tile(range(5), 2),
                      "x": rng.random(10)})
        for c in (1, 3)
    ]  # fmt: skip
    scorers = {"up": lambda f: f["x"].to_numpy(), "down": lambda f: -f["x"].to_numpy()}
    got = score_frames(iter(frames), scorers, k=2)
    assert got.schema == pl.Schema(SCORED_SCHEMA)
    for name, scorer in scorers.items():
        want = pl.concat(training.ranked(f, scorer(f), 2) for f in frames)
        assert got.filter(pl.col("ranker") == name).drop("ranker").equals(want)
    assert got.height == 2 * 4 * 2  # two scorers, four customers, two each
    assert score_frames(iter([]), scorers, k=2).schema == pl.Schema(SCORED_SCHEMA)
