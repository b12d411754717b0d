"""Final recommendations for the prediction week: the ranker's top 12 for every customer,
topped up from a non-personal fallback chosen by validation; the submission file; the DuckDB
database analysts query."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from hm_pipeline.evaluation import blend, to_submission
from hm_pipeline.ranking.union import source_names

RANKERS = ("ranker_lightgbm", "ranker_dlrm")


def validation_table(reports_dir: Path | str, prefix: str, weeks) -> pl.DataFrame:
    """The `<prefix>_<week>.csv` evaluation tables of those validation `weeks` written so far,
    stacked; a clear error when there is none."""
    files = [Path(reports_dir) / f"{prefix}_{w}.csv" for w in weeks]
    found = [f for f in files if f.exists()]
    if not found:
        raise FileNotFoundError(
            f"no {prefix}_<week>.csv in {reports_dir}: materialize evaluation_report for the "
            "validation weeks first"
        )
    return pl.concat([pl.read_csv(f) for f in found], how="diagonal_relaxed")


def scoring_rankers(wanted: list[str] | None, reports_dir: Path | str, weeks) -> list[str]:
    """The rankers that score the prediction week: `wanted` when given (checked), otherwise
    only the one the final recommendations use (better mean MAP@12 over the evaluation
    tables of the validation `weeks` in `reports_dir`)."""
    if wanted:
        unknown = sorted(set(wanted) - set(RANKERS))
        if unknown:
            raise ValueError(f"unknown rankers {unknown}: choose from {list(RANKERS)}")
        return [r for r in RANKERS if r in wanted]
    return [choose(validation_table(reports_dir, "evaluation", weeks), list(RANKERS))[0]]


def choose(by_method: pl.DataFrame, allowed: list[str]) -> tuple[str, dict[str, float]]:
    """The method of `allowed` with the best mean MAP@12 over the weeks in `by_method`
    (columns method, map_at_12, one row per week and method), and every allowed mean."""
    means = (
        by_method.filter(pl.col("method").is_in(allowed))
        .group_by("method")
        .agg(pl.col("map_at_12").mean())
        .sort(["map_at_12", "method"], descending=[True, False])
    )
    if means.height == 0:
        raise ValueError(f"no evaluation of {allowed} to choose from: evaluate a week first")
    return means["method"][0], dict(means.iter_rows())


def final_top12(
    ranker: pl.DataFrame | pl.LazyFrame,
    fallback: pl.DataFrame | pl.LazyFrame,
    everyone: pl.Series,
    has_history: pl.Series,
    fallback_for_cold: bool,
) -> pl.DataFrame:
    """customer_id, rank 1..12, article_id, score, origin for every customer: the ranker's
    list topped up by the fallback's; customers without history get the fallback alone when
    validation preferred it for them. Only the ranker's and the fallback's top 12 are read: a
    ranker list of n < 12 shares at most n articles with the fallback's top 12, which so holds
    the 12 - n new ones the top up needs."""
    cust = pl.DataFrame({"customer_id": everyone.cast(pl.Int32)})
    cold = cust.join(
        pl.DataFrame({"customer_id": has_history.cast(pl.Int32)}), on="customer_id", how="anti"
    )
    ranked = ranker.lazy().filter(pl.col("rank") <= 12).collect()
    if fallback_for_cold:
        ranked = ranked.join(cold, on="customer_id", how="anti")
    fb = (
        fallback.lazy()
        .filter(pl.col("rank") <= 12)
        .join(cust.lazy(), on="customer_id", how="semi")
        .collect()
    )
    top = blend(ranked, fb, k=12).join(
        ranked.select("customer_id", "article_id", pl.col("score").alias("ranker_score")),
        on=["customer_id", "article_id"],
        how="left",
    )
    return top.select(
        "customer_id",
        "rank",
        "article_id",
        pl.col("ranker_score").alias("score"),
        pl.when(pl.col("ranker_score").is_null())
        .then(pl.lit("fallback"))
        .otherwise(pl.lit("ranker"))
        .alias("origin"),
    ).sort("customer_id", "rank")


def with_sources(top: pl.DataFrame, union: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """Adds `sources`: the sources that found each recommended article, with their rank
    ("twotower:3, repurchase:1"), from the week's candidate union (read lazily: at full scale
    the prediction week's union does not fit in memory)."""
    names = source_names(union)
    found = (
        union.lazy()
        .select("customer_id", "article_id", *[f"{n}_rank" for n in names])
        .join(
            top.lazy().select("customer_id", "article_id"),
            on=["customer_id", "article_id"],
            how="semi",
        )
        .collect(engine="streaming")
    )
    # "name:rank" where the source found the article (null otherwise), joined skipping nulls:
    # one string per row, without building a list per row first (the full-scale prediction
    # week in benchmarks/recommendation-sources.md: 68-77 s with the lists, 29-36 s without)
    parts = [pl.concat_str(pl.lit(f"{n}:"), pl.col(f"{n}_rank")) for n in names]
    labelled = found.select(
        "customer_id",
        "article_id",
        pl.concat_str(parts, separator=", ", ignore_nulls=True).alias("sources"),
    )
    return top.join(labelled, on=["customer_id", "article_id"], how="left").with_columns(
        pl.col("sources").fill_null("")
    )


def write_submission(top: pl.DataFrame, customer_ids: pl.DataFrame, path: Path) -> int:
    """The competition's submission file for every customer in customer_ids' order."""
    sub = to_submission(top, customer_ids)
    order = customer_ids.select(pl.col("customer_hex").alias("customer_id")).with_row_index("_o")
    sub = sub.join(order, on="customer_id", how="left").sort("_o").drop("_o")
    tmp = path.with_suffix(".tmp")
    sub.write_csv(tmp)
    os.replace(tmp, path)
    return sub.height


def write_database(
    path: Path, recommendations: pl.DataFrame, views: dict[str, Path], articles: pl.DataFrame
) -> None:
    """A DuckDB database: the recommendations table (with customer hex ids and article names)
    and one view per lake table, built in a temporary file and renamed into place."""
    import duckdb

    tmp = path.with_suffix(".tmp.duckdb")
    tmp.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    rec = recommendations.join(
        articles.select("article_id", "prod_name", "product_type_name", "colour_group_name"),
        on="article_id",
        how="left",
    ).sort("customer_id", "rank")
    with duckdb.connect(str(tmp)) as con:
        con.register("rec_frame", rec.to_arrow())
        con.execute("CREATE TABLE recommendations AS SELECT * FROM rec_frame")
        con.execute("CREATE INDEX rec_customer ON recommendations (customer_hex)")
        for name, file in views.items():
            reader = (
                "read_parquet" if file.suffix == ".parquet" or file.is_dir() else "read_csv_auto"
            )
            target = str(file / "*.parquet") if file.is_dir() else str(file)
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM {reader}('{target}')")
    os.replace(tmp, path)


def lookup(path: Path, customer: str) -> pl.DataFrame:
    """The recommendations of one customer (64-hex id or the lake's integer id)."""
    import duckdb

    if not Path(path).exists():
        raise FileNotFoundError(
            f"{path} does not exist: run `hm-pipeline run --week <prediction week>` first"
        )
    column = "customer_id" if customer.isdigit() else "customer_hex"
    value = int(customer) if customer.isdigit() else customer.lower()
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.sql(
            "SELECT rank, article_id, prod_name, product_type_name, colour_group_name, score, "
            f"origin, sources FROM recommendations WHERE {column} = ? ORDER BY rank",
            params=[value],
        ).to_arrow_table()
    return pl.from_arrow(rows)
