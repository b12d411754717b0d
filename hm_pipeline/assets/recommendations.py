"""The prediction week's final top 12 for every customer, the submission file and the DuckDB
database."""

import dagster as dg
import polars as pl

from hm_pipeline import evaluation, recommend
from hm_pipeline.assets.evaluation import NON_PERSONAL
from hm_pipeline.partitions import CALENDAR
from hm_pipeline.resources import Reports, Warehouse
from hm_pipeline.settings import lake_dir

PREDICTION = dg.SpecificPartitionsPartitionMapping([str(CALENDAR.prediction_week)])
INS = {
    name: dg.AssetIn(partition_mapping=PREDICTION)
    for name in ("ranker_candidates", *(f"candidates_{n}" for n in NON_PERSONAL))
} | {"prediction_scores": dg.AssetIn(metadata={"by_partition": True})}
VIEWS = ("articles", "customers", "customer_ids", "transactions", "image_manifest")


def _validation(reports: Reports, prefix: str) -> pl.DataFrame:
    try:
        return recommend.validation_table(reports.reports_dir, prefix, CALENDAR.validation_weeks)
    except FileNotFoundError as exc:
        raise dg.Failure(str(exc)) from exc


@dg.asset(group_name="recommendations", ins=INS, deps=["evaluation_report"])
def recommendations(
    context: dg.AssetExecutionContext,
    reports: Reports,
    warehouse: Warehouse,
    customers: pl.DataFrame,
    customer_ids: pl.DataFrame,
    articles: pl.DataFrame,
    transactions: pl.LazyFrame,
    ranker_candidates: pl.LazyFrame,
    prediction_scores: dict,
    **lists: pl.LazyFrame,
) -> pl.DataFrame:
    """The top 12 of every customer in customers.csv for the prediction week: the ranker with
    the better validation MAP@12, topped up by (and, for customers without history, replaced by
    when validation says so) the best non-personal list on buyers without history. Writes
    reports/submission.csv and the DuckDB database."""
    ranker, ranker_means = recommend.choose(
        _validation(reports, "evaluation"), list(recommend.RANKERS)
    )
    cold, cold_means = recommend.choose(
        _validation(reports, "evaluation_cold"), [*NON_PERSONAL, ranker]
    )
    fallback_name = (
        cold
        if cold != ranker
        else recommend.choose(_validation(reports, "evaluation_cold"), list(NON_PERSONAL))[0]
    )
    week = CALENDAR.prediction_week
    has_history = (
        transactions.filter(pl.col("t_dat") < week).select("customer_id").unique().collect()
    )["customer_id"]
    scores = pl.concat([lf for _, lf in sorted(prediction_scores.items())])  # lazily
    mine = scores.filter(pl.col("ranker") == ranker).drop("ranker")
    if mine.head(1).collect().is_empty():
        held = scores.select(pl.col("ranker").unique()).collect(engine="streaming")["ranker"]
        raise dg.Failure(
            f"validation prefers {ranker}, but prediction_scores hold {sorted(held)}: "
            "materialize prediction_scores again"
        )
    top = recommend.final_top12(
        mine,
        lists[f"candidates_{fallback_name}"],
        customers["customer_id"],
        has_history,
        fallback_for_cold=cold != ranker,
    )
    top = recommend.with_sources(top, ranker_candidates).join(
        customer_ids, on="customer_id", how="left"
    )
    short = top.group_by("customer_id").len().filter(pl.col("len") < 12).height
    if top["customer_id"].n_unique() != customers.height or short:
        raise dg.Failure(
            f"{customers.height - top['customer_id'].n_unique()} customers without "
            f"recommendations, {short} with fewer than 12"
        )
    n = recommend.write_submission(top, customer_ids, reports.path("submission.csv"))
    views = {v: lake_dir() / f"{v}.parquet" for v in VIEWS}
    views["evaluation_by_week"] = reports.path("evaluation_summary.csv")
    recommend.write_database(
        warehouse.path_obj(), top, {k: p for k, p in views.items() if p.exists()}, articles
    )
    context.add_output_metadata(
        {
            "ranker": ranker,
            "ranker_validation_map_at_12": dg.MetadataValue.json(ranker_means),
            "fallback_for_customers_without_history": cold if cold != ranker else "(the ranker)",
            "top_up_list": fallback_name,
            "cold_validation_map_at_12": dg.MetadataValue.json(cold_means),
            "submission_rows": n,
            "from_fallback": int((top["origin"] == "fallback").sum()),
            "database": dg.MetadataValue.path(str(warehouse.path)),
            "sample": dg.MetadataValue.md(
                evaluation.markdown_table(top.head(12).drop("customer_hex"))
            ),
        }
    )
    return top
