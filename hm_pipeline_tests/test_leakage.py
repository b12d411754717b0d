"""For week W, nothing but W's labels may see W or later: truncating the raw data at W's start
must give identical features and candidates for W."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from hm_pipeline.candidates import REGISTRY, SourceContext
from hm_pipeline.candidates.learned import LEARNED_SOURCES, source_for_week
from hm_pipeline.features import article_features, customer_features
from hm_pipeline.ingest import Calendar, ingest_articles, ingest_customers, ingest_transactions
from hm_pipeline.schema import TRANSACTIONS_FILE
from hm_pipeline.settings import CALENDAR_END, CALENDAR_START
from hm_pipeline_tests.conftest import embeddings_for

WEEK = date(2020, 9, 2)


def _tables(raw: Path) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    articles = ingest_articles(raw / "articles.csv").table
    customers, ids = ingest_customers(raw / "customers.csv")
    tx = ingest_transactions(
        raw / TRANSACTIONS_FILE,
        ids,
        articles.select("article_id"),
        Calendar(CALENDAR_START, CALENDAR_END),
    )
    return articles, customers.table, tx.table.collect()


@pytest.fixture(scope="module")
def full_and_truncated(tiny_world: Path, tmp_path_factory: pytest.TempPathFactory):
    truncated = tmp_path_factory.mktemp("truncated")
    for f in ("articles.csv", "customers.csv"):
        (truncated / f).write_bytes((tiny_world / f).read_bytes())
    lines = (tiny_world / TRANSACTIONS_FILE).read_text().splitlines(keepends=True)
    kept = [ln for ln in lines[1:] if ln[:10] < str(WEEK)]
    assert 0 < len(kept) < len(lines) - 1
    (truncated / TRANSACTIONS_FILE).write_text(lines[0] + "".join(kept))
    return _tables(tiny_world), _tables(truncated)


def test_features_ignore_the_week_and_later(full_and_truncated) -> None:
    (arts, cust, tx), (_, _, tx_cut) = full_and_truncated
    assert tx_cut.height < tx.height
    assert (
        customer_features(tx.lazy(), WEEK)
        .collect()
        .equals(customer_features(tx_cut.lazy(), WEEK).collect())
    )
    assert (
        article_features(tx.lazy(), cust.lazy(), WEEK)
        .collect()
        .equals(article_features(tx_cut.lazy(), cust.lazy(), WEEK).collect())
    )


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_candidates_ignore_the_week_and_later(
    full_and_truncated, tiny_catalogue_embeddings, name: str
) -> None:
    (arts, cust, tx), (_, _, tx_cut) = full_and_truncated
    # co-purchase embeddings come from each history: leakage through them would show too
    ctx = SourceContext(
        arts, cust, embeddings=embeddings_for(tiny_catalogue_embeddings, tx, arts, WEEK)
    )
    ctx_cut = SourceContext(
        arts, cust, embeddings=embeddings_for(tiny_catalogue_embeddings, tx_cut, arts, WEEK)
    )
    buyers = tx.filter(pl.col("t_dat") >= WEEK)["customer_id"].unique().sort()
    full = REGISTRY[name](k=50).generate(tx.lazy(), buyers, WEEK, ctx)
    cut = REGISTRY[name](k=50).generate(tx_cut.lazy(), buyers, WEEK, ctx_cut)
    assert full.height > 0 and full.equals(cut)


@pytest.mark.parametrize("name", [cls.name for cls in LEARNED_SOURCES])
def test_learned_candidates_served_by_an_earlier_model_ignore_the_week_and_later(
    full_and_truncated, tmp_path: Path, name: str
) -> None:
    """Retraining every n weeks: the earlier week's model and the week's inputs see nothing
    from the week on."""
    (arts, cust, tx), (_, _, tx_cut) = full_and_truncated
    ctx = SourceContext(arts, cust)
    buyers = tx.filter(pl.col("t_dat") >= WEEK)["customer_id"].unique().sort()
    earlier = WEEK - timedelta(weeks=2)
    outs = []
    for history, folder in ((tx, tmp_path / "full"), (tx_cut, tmp_path / "cut")):
        src, served_by, fresh = source_for_week(
            REGISTRY[name], 50, WEEK, earlier, folder, history.lazy(), ctx
        )
        assert (served_by, fresh) == (earlier, True)
        outs.append(src.generate(history.lazy(), buyers, WEEK, ctx))
    assert outs[0].height > 0 and outs[0].equals(outs[1])
