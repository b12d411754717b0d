"""The contract every registered candidate source must keep (one suite, every source)."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from hm_pipeline.candidates import CANDIDATE_SCHEMA, REGISTRY, SourceContext
from hm_pipeline_tests.conftest import embeddings_for

CUTOFF = date(2020, 9, 2)
K = 30


@pytest.fixture(scope="module")
def setup(tiny_tables: dict, tiny_catalogue_embeddings: dict):
    tx = tiny_tables["transactions"]
    arts = tiny_tables["articles"]
    ctx = SourceContext(
        articles=arts,
        customers=tiny_tables["customers"],
        seed=1,
        embeddings=embeddings_for(tiny_catalogue_embeddings, tx, arts, CUTOFF),
    )
    # the week's buyers plus some customers with no history at all
    buyers = tx.filter(pl.col("t_dat") >= CUTOFF)["customer_id"].unique()
    never = tiny_tables["customers"].join(tx, on="customer_id", how="anti")["customer_id"]
    customers = pl.concat([buyers, never.head(5)]).unique().sort()
    return tx, ctx, customers


@pytest.fixture(params=sorted(REGISTRY), scope="module")
def output(request, setup):
    tx, ctx, customers = setup
    source = REGISTRY[request.param](k=K)
    return source, source.generate(tx.lazy(), customers, CUTOFF, ctx)


def test_schema_and_ranks(output) -> None:
    _, out = output
    assert out.schema == pl.Schema(CANDIDATE_SCHEMA)
    assert out.height > 0
    ranks = out.group_by("customer_id").agg(pl.col("rank").sort(), pl.len())
    assert all(r == list(range(1, n + 1)) for r, n in ranks.select("rank", "len").iter_rows())
    # rank follows score
    bad = out.sort("customer_id", "rank").with_columns(
        (pl.col("score").diff().over("customer_id") > 1e-6).alias("up")
    )
    assert not bad["up"].any()


def test_articles_are_in_the_catalogue(output, setup) -> None:
    _, out = output
    _, ctx, _ = setup
    assert out.join(ctx.articles, on="article_id", how="anti").height == 0


def test_no_duplicate_pairs_and_at_most_k(output) -> None:
    _, out = output
    assert not out.select("customer_id", "article_id").is_duplicated().any()
    assert out.group_by("customer_id").len()["len"].max() <= K


def test_only_requested_customers(output, setup) -> None:
    _, out = output
    _, _, customers = setup
    assert out["customer_id"].is_in(customers.implode()).all()


def test_same_seed_same_output(output, setup) -> None:
    source, out = output
    tx, ctx, customers = setup
    again = type(source)(k=K).generate(tx.lazy(), customers, CUTOFF, ctx)
    assert again.equals(out)


def test_no_leakage(output, setup) -> None:
    """Rows dated on or after the cutoff change nothing, however many and whatever they say."""
    source, out = output
    tx, ctx, customers = setup
    before = tx.filter(pl.col("t_dat") < CUTOFF)
    popular = before["article_id"].value_counts(sort=True)["article_id"].head(3)
    future = pl.DataFrame(
        {
            "t_dat": [CUTOFF + timedelta(days=i % 10) for i in range(3000)],
            "customer_id": [customers[i % len(customers)] for i in range(3000)],
            "article_id": [popular[i % 3] for i in range(3000)],
            "price": [0.01] * 3000,
            "sales_channel_id": [1] * 3000,
        },
        schema=tx.schema,
    )
    changed = pl.concat([before, future]).lazy()
    assert type(source)(k=K).generate(changed, customers, CUTOFF, ctx).equals(out)
    # and the full table (the real future) gives the same output as the truncated one
    assert type(source)(k=K).generate(before.lazy(), customers, CUTOFF, ctx).equals(out)


NON_PERSONAL = ["popularity_last_week", "popularity_time_decayed", "popularity_age_group"]


def _odd_ages(customers: pl.DataFrame) -> pl.DataFrame:
    """The customers with an age group nobody else is in (120: it bought nothing lately) and
    an unknown age."""
    return customers.with_columns(
        pl.when(pl.int_range(pl.len()) == 0)
        .then(pl.lit(120.0))
        .when(pl.int_range(pl.len()) == 1)
        .then(None)
        .otherwise(pl.col("age"))
        .alias("age")
    )


@pytest.mark.parametrize("name", NON_PERSONAL)
def test_non_personal_sources_cover_every_customer(name: str, tiny_tables: dict) -> None:
    """The fallbacks of the final recommendations: nobody may be left without a list, not a
    customer of unknown age nor one whose age group bought nothing lately."""
    cust = _odd_ages(tiny_tables["customers"])
    ctx = SourceContext(articles=tiny_tables["articles"], customers=cust)
    out = REGISTRY[name](k=K).generate(
        tiny_tables["transactions"].lazy(), cust["customer_id"], CUTOFF, ctx
    )
    counts = out.group_by("customer_id").len()
    assert counts.height == cust.height and (counts["len"] == K).all()


@pytest.mark.parametrize("name", NON_PERSONAL)
def test_shared_lists_give_the_rows_of_ranking_every_customer(name: str, tiny_tables) -> None:
    """A source with one list for everyone (or one per age group) is ranked once per list and
    handed to each customer as it is: the same rows, in the same order, as spreading its
    scores over every customer first and ranking each customer's rows (the general path).
    Customers of unknown age, one missing from the customer table and one of an age group
    that bought nothing lately included."""
    cust = _odd_ages(tiny_tables["customers"])
    ctx = SourceContext(articles=tiny_tables["articles"], customers=cust)
    ids = cust["customer_id"]
    wanted = pl.concat([ids, pl.Series([ids.max() + 1], dtype=ids.dtype)])
    source = REGISTRY[name](k=K)

    class EveryCustomer(type(source)):  # the same scores, spread over the customers
        def score(self, history, customers, cutoff, ctx):
            lists = super().score(history, customers, cutoff, ctx).lazy()
            if "segment" in lists.collect_schema().names():
                who = self.segments(customers, ctx).lazy()
                return who.join(lists, on="segment").drop("segment")
            return customers.lazy().join(lists, how="cross")

    tx = tiny_tables["transactions"].lazy()
    fast = source.generate(tx, wanted, CUTOFF, ctx)
    slow = EveryCustomer(k=K).generate(tx, wanted, CUTOFF, ctx)
    assert fast.height == wanted.len() * K
    assert fast.equals(slow)


@pytest.mark.parametrize("name", ["similar_fused", "similar_text"])
def test_similarity_in_chunks_of_customers_gives_the_same_lists(name: str, setup) -> None:
    """Chunks of 7 customers (each keeping its own top k) give what one chunk gives."""
    tx, ctx, customers = setup
    whole = REGISTRY[name](k=K).generate(tx.lazy(), customers, CUTOFF, ctx)
    chunked = REGISTRY[name](k=K, chunk=7).generate(tx.lazy(), customers, CUTOFF, ctx)
    assert whole["customer_id"].n_unique() > 7 * 3  # several chunks
    assert chunked.equals(whole)


@pytest.mark.parametrize("k", [1, 3, 12])
def test_rows_at_least_the_kth_score_hold_the_top_k(k: int) -> None:
    """at_least_kth, the selection the similarity sources run before top_k's sort, keeps every
    row of each customer's top k: ties (broken by article id), nulls and NaNs (which the sort
    puts first) included."""
    import numpy as np

    from hm_pipeline.candidates.base import at_least_kth, top_k

    rng = np.random.default_rng(k)
    n = 4_000
    score = rng.integers(0, 6, n).astype(np.float64) / 3  # many ties
    score[rng.random(n) < 0.02] = np.nan
    frame = pl.DataFrame(
        {
            "customer_id": rng.integers(0, 300, n).astype(np.int32),  # 0 to ~30 rows each
            "article_id": rng.permutation(n).astype(np.int32),
            "score": score,
        }
    ).with_columns(
        pl.when(pl.int_range(pl.len()) % 97 == 0).then(None).otherwise("score").alias("score")
    )
    kept = frame.filter(at_least_kth("score", "customer_id", k))
    assert kept.height < frame.height
    assert top_k(kept.lazy(), k).collect().equals(top_k(frame.lazy(), k).collect())
