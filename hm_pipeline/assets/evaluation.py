"""Weekly evaluation reports and their summary across weeks."""

from pathlib import Path

import dagster as dg
import polars as pl

from hm_pipeline import evaluation, model_reports, plots, sampled, splits
from hm_pipeline.candidates import REGISTRY, SourceContext
from hm_pipeline.candidates.learned import LEARNED_SOURCES
from hm_pipeline.partitions import CALENDAR, weekly_partitions
from hm_pipeline.ranking.union import union_recall
from hm_pipeline.resources import ModelStore, RawFiles, Reports
from hm_pipeline.schema import SYNTHETIC_DIR
from hm_pipeline.weeks import parse_week

GROUP = "evaluation"
CANDIDATE_INS = {f"candidates_{name}": dg.AssetIn() for name in REGISTRY}
RANKER_INS = {name: dg.AssetIn() for name in ("ranker_lightgbm", "ranker_dlrm")}
NON_PERSONAL = ("popularity_last_week", "popularity_time_decayed", "popularity_age_group")


class EvaluationConfig(dg.Config):
    """The oracle (synthetic worlds) is a reference line, and it scores every article for each
    buyer it ranks (at full scale 93,684 buyers x 105,542 articles). It ranks a fixed random
    sample of `oracle_buyers` of W's buyers (all of them when there are fewer, or with 0), and
    its row is evaluated on those buyers only: the row's n_customers says how many."""

    oracle_buyers: int = 20_000
    oracle_seed: int = 0


@dg.asset(
    group_name=GROUP,
    partitions_def=weekly_partitions,
    ins={**CANDIDATE_INS, **RANKER_INS, "ranker_candidates": dg.AssetIn()},
)
def evaluation_report(
    context: dg.AssetExecutionContext,
    config: EvaluationConfig,
    raw_files: RawFiles,
    reports: Reports,
    labels: pl.DataFrame,
    customer_ids: pl.DataFrame,
    articles: pl.DataFrame,
    transactions: pl.LazyFrame,
    ranker_candidates: pl.LazyFrame,
    **candidates: pl.LazyFrame,
) -> pl.DataFrame:
    """Every source, both rankers, the "repurchase, then popular" blend and (synthetic worlds)
    the oracle on the customers who buy in W: MAP@12, hit rate@12, NDCG@12, recall@12/50/100/
    200, coverage. Also the candidate union's recall, the non-personal methods and rankers on
    buyers without history (evaluation_cold_<W>.csv: how the final recommendations pick their
    fallback), evaluation_<W>.csv and each method's top 12 in the submission format."""
    week = parse_week(context.partition_key)
    if week not in CALENDAR.validation_weeks:
        why = (
            "the prediction week: no labels"
            if not CALENDAR.has_labels(week)
            else ("a warm-up week: it only feeds the rankers' training")
        )
        context.add_output_metadata({"note": f"{week} is {why}; nothing to evaluate"})
        return pl.DataFrame(schema={c: pl.Float64 for c in evaluation.EVALUATION_COLUMNS})
    # **kwargs inputs carry no annotation, so the IO manager hands them over lazily
    sources = {name.removeprefix("candidates_"): lf.collect() for name, lf in candidates.items()}
    oracle, subsets = None, {}
    if (Path(raw_files.raw_dir) / SYNTHETIC_DIR).exists():
        buyers = evaluation.sample_buyers(labels, config.oracle_buyers, config.oracle_seed)
        oracle = evaluation.oracle_ranking(
            raw_files.raw_dir, transactions, customer_ids, week, buyers
        )
        subsets["oracle"] = buyers
    methods = evaluation.weekly_methods(sources, oracle)
    table = evaluation.evaluation_table(methods, labels, articles.height, subsets)
    table.write_csv(reports.path(f"evaluation_{week}.csv"))
    union = ranker_candidates.select("customer_id", "article_id").collect()
    recall = union_recall(union, labels)
    pl.DataFrame([recall]).write_csv(reports.path(f"union_recall_{week}.csv"))
    cold_buyers = evaluation.without_history(labels, transactions, week)
    cold = evaluation.evaluation_table(
        {m: methods[m] for m in (*NON_PERSONAL, "ranker_lightgbm", "ranker_dlrm")},
        cold_buyers,
        articles.height,
    )
    cold.write_csv(reports.path(f"evaluation_cold_{week}.csv"))
    for name, ranked in methods.items():
        evaluation.to_submission(ranked, customer_ids).write_csv(
            reports.path("predictions", str(week), f"{name}.csv")
        )
    context.add_output_metadata(
        {
            "evaluation": dg.MetadataValue.md(evaluation.markdown_table(table)),
            "candidate_union": dg.MetadataValue.json(recall),
            "buyers_without_history": cold_buyers["customer_id"].n_unique(),
        }
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


LEARNED_INS = {
    f"candidates_{name}": dg.AssetIn()
    for name in ["popularity_last_week", *(cls.name for cls in LEARNED_SOURCES)]
}


@dg.asset(group_name=GROUP, partitions_def=weekly_partitions, ins=LEARNED_INS, pool="learned")
def sampled_evaluation(
    context: dg.AssetExecutionContext,
    reports: Reports,
    model_store: ModelStore,
    labels: pl.DataFrame,
    articles: pl.DataFrame,
    customers: pl.DataFrame,
    transactions: pl.LazyFrame,
    **candidates: pl.LazyFrame,
) -> pl.DataFrame:
    """The seed's protocol beside the full ranking: each buyer's held-out purchase ranked among
    99 sampled negatives (HR@10, NDCG@10) and among the whole catalogue, for last-week
    popularity and every learned source (restored from the model store, not retrained)."""
    week = parse_week(context.partition_key)
    if week not in CALENDAR.validation_weeks:
        context.add_output_metadata({"note": f"{week} is not a validation week"})
        return pl.DataFrame(schema={"method": pl.String})
    ctx = SourceContext(articles=articles, customers=customers)
    learned = {
        cls.name: cls.restore(
            model_store.folder(cls.name, context.partition_key), transactions, week, ctx
        )
        for cls in LEARNED_SOURCES
    }
    ranked = {name.removeprefix("candidates_"): lf.collect() for name, lf in candidates.items()}
    table = model_reports.sampled_table(transactions, labels, articles, week, learned, ranked)
    table.write_csv(reports.path(f"sampled_evaluation_{week}.csv"))
    context.add_output_metadata(
        {
            "sampled_vs_full": dg.MetadataValue.md(
                evaluation.markdown_table(table) + "\n\n" + sampled.WHY_THEY_DISAGREE
            )
        }
    )
    return table


class StrategyReportConfig(dg.Config):
    """The week NeuMF is trained for under each negative strategy (default: the last
    validation week)."""

    week: str = str(CALENDAR.validation_weeks[-1])


@dg.asset(group_name=GROUP, pool="learned")
def negative_strategy_report(
    context: dg.AssetExecutionContext,
    config: StrategyReportConfig,
    reports: Reports,
    articles: pl.DataFrame,
    customers: pl.DataFrame,
    transactions: pl.LazyFrame,
) -> pl.DataFrame:
    """NeuMF trained with each of the four negative-sampling strategies on the same week and
    evaluated on the same buyers (full ranking and sampled), beside last-week popularity."""
    week = parse_week(config.week)
    if not CALENDAR.has_labels(week):
        raise dg.Failure(f"{week} has no labels: pick a validation week")
    labels = splits.labels(transactions, week).collect()
    ctx = SourceContext(articles=articles, customers=customers)
    table = model_reports.negative_strategy_table(transactions, labels, ctx, week)
    md = (
        f"NeuMF by negative strategy, week {week}, {table['n_customers'][0]} buyers\n\n"
        + evaluation.markdown_table(table)
        + "\n\n"
        + sampled.WHY_THEY_DISAGREE
    )
    reports.path(f"negative_strategies_{week}.md").write_text(md + "\n")
    context.add_output_metadata({"report": dg.MetadataValue.md(md)})
    return table
