"""Weekly evaluation reports and their summary across weeks."""

from pathlib import Path

import dagster as dg
import polars as pl

from hm_pipeline import evaluation, plots
from hm_pipeline.candidates import REGISTRY
from hm_pipeline.partitions import CALENDAR, weekly_partitions
from hm_pipeline.resources import RawFiles, Reports
from hm_pipeline.schema import SYNTHETIC_DIR
from hm_pipeline.weeks import parse_week

GROUP = "evaluation"
CANDIDATE_INS = {f"candidates_{name}": dg.AssetIn() for name in REGISTRY}


@dg.asset(group_name=GROUP, partitions_def=weekly_partitions, ins=CANDIDATE_INS)
def evaluation_report(
    context: dg.AssetExecutionContext,
    raw_files: RawFiles,
    reports: Reports,
    labels: pl.DataFrame,
    customer_ids: pl.DataFrame,
    articles: pl.DataFrame,
    transactions: pl.LazyFrame,
    **candidates: pl.LazyFrame,
) -> pl.DataFrame:
    """Every source, the "repurchase, then popular" blend and (synthetic worlds) the oracle on
    the customers who buy in W: MAP@12, hit rate@12, NDCG@12, recall@12/50/100/200, coverage.
    Also writes evaluation_<W>.csv and each method's top 12 in the submission format."""
    week = parse_week(context.partition_key)
    if not CALENDAR.has_labels(week):
        context.add_output_metadata(
            {"note": f"{week} is the prediction week: no labels to evaluate"}
        )
        return pl.DataFrame(schema={c: pl.Float64 for c in evaluation.EVALUATION_COLUMNS})
    # **kwargs inputs carry no annotation, so the IO manager hands them over lazily
    sources = {name.removeprefix("candidates_"): lf.collect() for name, lf in candidates.items()}
    oracle = None
    if (Path(raw_files.raw_dir) / SYNTHETIC_DIR).exists():
        buyers = labels["customer_id"].unique().sort()
        oracle = evaluation.oracle_ranking(
            raw_files.raw_dir, transactions, customer_ids, week, buyers
        )
    methods = evaluation.weekly_methods(sources, oracle)
    table = evaluation.evaluation_table(methods, labels, articles.height)
    table.write_csv(reports.path(f"evaluation_{week}.csv"))
    for name, ranked in methods.items():
        evaluation.to_submission(ranked, customer_ids).write_csv(
            reports.path("predictions", str(week), f"{name}.csv")
        )
    context.add_output_metadata(
        {"evaluation": dg.MetadataValue.md(evaluation.markdown_table(table))}
    )
    return table


@dg.asset(group_name=GROUP, deps=[evaluation_report])
def evaluation_summary(context: dg.AssetExecutionContext, reports: Reports) -> pl.DataFrame:
    """All validation weeks evaluated so far: MAP@12 by week and method, a plot, the means."""
    files = {w: reports.path(f"evaluation_{w}.csv") for w in CALENDAR.validation_weeks}
    found = {w: p for w, p in files.items() if p.exists()}
    if not found:
        raise dg.Failure("no evaluation_<week>.csv yet: materialize evaluation_report first")
    by_week = pl.concat(
        [pl.read_csv(p).with_columns(pl.lit(w).alias("week")) for w, p in sorted(found.items())],
        how="diagonal_relaxed",
    )
    summary = evaluation.summarize(by_week)
    png = plots.map_by_week(by_week, reports.path("evaluation_summary.png"))
    summary.write_csv(reports.path("evaluation_summary.csv"))
    context.add_output_metadata(
        {
            "weeks": dg.MetadataValue.json([str(w) for w in sorted(found)]),
            "summary": dg.MetadataValue.md(
                evaluation.markdown_table(summary)
                + "\n\n"
                + plots.markdown_image(png, "MAP@12 by week")
            ),
        }
    )
    return by_week
