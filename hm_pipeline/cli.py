"""The `hm-pipeline` command line."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import click

from hm_pipeline.bench import TARGETS
from hm_pipeline.settings import (
    CALENDAR_END,
    CALENDAR_START,
    DATA_DIR_ENV,
    data_dir,
    raw_dir,
)


class _Progress:
    """Prints a stage's progress to stderr every ~10%."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.last: dict[str, int] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        pct = int(100 * done / max(total, 1))
        if pct // 10 != self.last.get(stage, -1) or done == total:
            self.last[stage] = pct // 10
            click.echo(
                f"[{time.monotonic() - self.t0:7.1f}s] {stage}: {done}/{total} ({pct}%)", err=True
            )


@click.group()
def main() -> None:
    """hm-pipeline: H&M-format fashion recommendations as a Dagster asset graph."""


@main.command()
@click.option(
    "--scale",
    type=click.Choice(["tiny", "small", "medium", "full"]),
    default="small",
    show_default=True,
)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder for the Kaggle files [default: $HM_DATA_DIR/raw]",
)
@click.option(
    "--report",
    "report_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Print the figures of the world in this folder beside the real data's, "
    "instead of generating one.",
)
@click.option(
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="With --report: also write the table to this markdown file.",
)
@click.option("--force", is_flag=True, help="Overwrite a folder that holds non-synthetic files.")
@click.option(
    "--drops",
    type=click.IntRange(0, 8),
    default=0,
    show_default=True,
    help="Hold the final N weeks back as weekly drop files in <out>/upcoming/; moving one into "
    "<out>/drops/ makes it arrive (the new-data sensor appends it).",
)
def synth(
    scale: str,
    seed: int,
    out: Path | None,
    report_dir: Path | None,
    output: Path | None,
    force: bool,
    drops: int,
) -> None:
    """Generate a synthetic H&M world (or report on one with --report)."""
    if report_dir is not None:
        from hm_pipeline.synth.report import format_report, world_figures

        table = format_report(world_figures(report_dir), title="this world")
        click.echo(table)
        if output:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(
                f"# Synthetic world report\n\nWorld: `{report_dir}`. Written by "
                f"`hm-pipeline synth --report {report_dir} --output {output}`.\n\n{table}\n"
            )
        return
    from hm_pipeline.schema import ARTICLES_FILE, SYNTHETIC_DIR
    from hm_pipeline.synth.world import META_FILE, generate_world

    out = out or raw_dir()
    if (
        (out / ARTICLES_FILE).exists()
        and not (out / SYNTHETIC_DIR / META_FILE).exists()
        and not force
    ):
        raise click.ClickException(
            f"{out} holds an articles.csv that is not a synthetic world (real data?); "
            "use another --out or --force to overwrite it"
        )
    import shutil

    from hm_pipeline.drops import DROPS_DIR, UPCOMING_DIR, split_final_weeks
    from hm_pipeline.settings import CALENDAR_FILE

    t0 = time.monotonic()
    meta = generate_world(scale, seed, out, _Progress())
    # a new world: the old one's drops and calendar state no longer apply
    (out / CALENDAR_FILE).unlink(missing_ok=True)
    for folder in (DROPS_DIR, UPCOMING_DIR):
        shutil.rmtree(out / folder, ignore_errors=True)
    click.echo(
        f"synthetic world '{scale}' (seed {seed}) written to {out}: "
        f"{meta['n_transactions']:,} transactions in {time.monotonic() - t0:.1f}s"
    )
    if drops:
        files = split_final_weeks(out, drops)
        click.echo(
            f"the final {drops} week(s) held back as drops: "
            + ", ".join(str(f.relative_to(out)) for f in files)
            + f"; move one into {out / DROPS_DIR} to have it arrive"
        )


def _check_week(week: str) -> date:
    from hm_pipeline.weeks import parse_week

    try:
        d = parse_week(week)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    last = CALENDAR_END + timedelta(days=1)
    if not (CALENDAR_START <= d <= last):
        raise click.BadParameter(f"{d} is outside the calendar {CALENDAR_START} .. {last}")
    return d


@main.command()
@click.option(
    "--week",
    required=True,
    help="A week named by its Wednesday (YYYY-MM-DD), or 'all' for every week (warm-up, "
    "validation, prediction), followed by the reports.",
)
@click.option(
    "--refresh-catalogue",
    is_flag=True,
    help="Recompute the catalogue's embeddings even when they exist (the raw tables are "
    "always re-read).",
)
def run(week: str, refresh_catalogue: bool) -> None:
    """Materialize, through Dagster and recorded in the instance, the raw tables, the
    catalogue's embeddings (once) and every asset of a week."""
    from hm_pipeline.partitions import CALENDAR

    weeks = [str(w) for w in CALENDAR.partition_weeks] if week == "all" else [week]
    for w in weeks:
        _check_week(w)
    _writable(data_dir())
    from hm_pipeline.instance import ensure_dagster_home

    home = ensure_dagster_home()
    import dagster as dg

    from hm_pipeline.definitions import FEATURE_LEVEL, build_defs

    click.echo(f"data: {data_dir()}  instance: {home}", err=True)
    defs = build_defs()
    ok = True
    t_start = time.monotonic()
    with dg.DagsterInstance.get() as instance:
        catalogue = defs.resolve_job_def("catalogue")
        keys = catalogue.asset_layer.executable_asset_keys
        have = [k for k in keys if instance.get_latest_materialization_event(k) is not None]
        selection = (
            None
            if refresh_catalogue or len(have) < len(keys)
            else [
                k
                for k in keys
                if k.path[0] not in ("text_embeddings", "image_embeddings", "metadata_embeddings")
            ]
        )
        click.echo("catalogue:" if selection is None else "raw tables (embeddings exist):")
        result = catalogue.execute_in_process(
            instance=instance, raise_on_error=False, asset_selection=selection, run_config=QUIET
        )
        _summarize(result)
        ok &= result.success
        done = instance.get_materialized_partitions(dg.AssetKey("ranker_features"))
        evaluated = instance.get_materialized_partitions(dg.AssetKey("evaluation_report"))
        last_validation = str(CALENDAR.validation_weeks[-1])
        if weeks == [str(CALENDAR.prediction_week)] and last_validation not in evaluated:
            # the final recommendations pick their ranker and fallback by validation
            click.echo(f"{last_validation} is not evaluated yet: running it first")
            weeks = [last_validation, *weeks]
        for i, w in enumerate(weeks if ok else []):
            # the rankers of W learn from the features of the weeks before it
            for before in _missing_training_weeks(w, weeks, done):
                if ok:
                    click.echo(f"week {before} (features for the rankers of {w}):")
                    result = defs.resolve_job_def("weekly_pipeline").execute_in_process(
                        instance=instance,
                        partition_key=before,
                        tags={"hm/week": before},
                        raise_on_error=False,
                        asset_selection=FEATURE_LEVEL,
                        run_config=QUIET,
                    )
                    _summarize(result)
                    ok &= result.success
                    done.add(before)
            if not ok:
                break
            click.echo(
                f"week {w} ({i + 1}/{len(weeks)}, {time.monotonic() - t_start:.0f}s so far):"
            )
            result = defs.resolve_job_def("weekly_pipeline").execute_in_process(
                instance=instance,
                partition_key=w,
                tags={"hm/week": w},
                raise_on_error=False,
                run_config=QUIET,
            )
            _summarize(result)
            ok &= result.success
            done.add(w)
        if ok and str(CALENDAR.prediction_week) in weeks:
            ok &= _predict_shards(defs, instance)
        if week == "all" and ok:
            click.echo("reports:")
            result = defs.resolve_job_def("reports").execute_in_process(
                instance=instance, raise_on_error=False, run_config=QUIET
            )
            _summarize(result)
            ok &= result.success
        elif ok and week == str(CALENDAR.prediction_week):
            click.echo("recommendations:")
            result = defs.resolve_job_def("reports").execute_in_process(
                instance=instance,
                raise_on_error=False,
                asset_selection=[dg.AssetKey("recommendations")],
                run_config=QUIET,
            )
            _summarize(result)
            ok &= result.success
    click.echo(f"done in {time.monotonic() - t_start:.0f}s" if ok else "FAILED", err=not ok)
    if not ok:
        sys.exit(1)


QUIET = {"loggers": {"step_progress": {}}}  # one line per step instead of Dagster's debug log


def _predict_shards(defs, instance) -> bool:
    """The prediction week's customers, one shard per run (what a backfill over the
    `prediction` job spreads across workers)."""
    from hm_pipeline.ranking.shards import shard_keys

    job = defs.resolve_job_def("prediction")
    ok = True
    for shard in shard_keys():
        click.echo(f"prediction shard {shard}:")
        result = job.execute_in_process(
            instance=instance, partition_key=shard, raise_on_error=False, run_config=QUIET
        )
        _summarize(result)
        ok &= result.success
        if not ok:
            break
    return ok


def _missing_training_weeks(week: str, planned: list[str], done: set[str]) -> list[str]:
    """The weeks before `week` whose features its rankers read and that are neither
    materialized nor planned before it in this run."""
    from hm_pipeline.assets.ranking import MAX_TRAINING_WEEKS
    from hm_pipeline.partitions import CALENDAR

    w = date.fromisoformat(week)
    if w in CALENDAR.warmup_weeks:
        return []
    keys = {str(x) for x in CALENDAR.partition_weeks}
    earlier = [str(w - timedelta(days=7 * i)) for i in range(MAX_TRAINING_WEEKS, 0, -1)]
    before_in_run = set(planned[: planned.index(week)])
    return [e for e in earlier if e in keys and e not in done and e not in before_in_run]


@main.command()
@click.argument("customer")
def recommend(customer: str) -> None:
    """The 12 articles recommended to CUSTOMER (64-hex id or the lake's integer id) for the
    prediction week, with their names and the sources that found each."""
    from hm_pipeline.recommend import lookup

    rows = lookup(data_dir() / "hm.duckdb", customer)
    if rows.height == 0:
        raise click.ClickException(f"no recommendations for customer {customer}")
    for r in rows.iter_rows(named=True):
        click.echo(
            f"{r['rank']:2d}. {r['article_id']:010d}  {r['prod_name']} ({r['product_type_name']},"
            f" {r['colour_group_name']})  [{r['sources'] or r['origin']}]"
        )


README_BEGIN = "<!-- results: written by hm-pipeline evaluation-table --readme README.md -->"
README_END = "<!-- end of results -->"


@main.command("evaluation-table")
@click.option(
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write the markdown to this file.",
)
@click.option(
    "--readme",
    type=click.Path(path_type=Path, exists=True),
    default=None,
    help="Also replace the results block of this README (between its two markers).",
)
def evaluation_table_command(output: Path | None, readme: Path | None) -> None:
    """MAP@12, hit rate@12 and NDCG@12 per validation week and method (from
    data/reports/evaluation_<week>.csv)."""
    from hm_pipeline.evaluation import weekly_map_table
    from hm_pipeline.settings import reports_dir

    md = weekly_map_table(reports_dir())
    click.echo(md)
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(
            f"# Evaluation on `{data_dir()}`\n\nWritten by `hm-pipeline evaluation-table "
            f"--output {output}` after `hm-pipeline run --week all`.\n\n{md}\n"
        )
    if readme:
        text = readme.read_text()
        if README_BEGIN not in text or README_END not in text:
            raise click.ClickException(f"{readme} has no results markers ({README_BEGIN})")
        head, rest = text.split(README_BEGIN, 1)
        _, tail = rest.split(README_END, 1)
        readme.write_text(f"{head}{README_BEGIN}\n{md}\n{README_END}{tail}")


def _summarize(result) -> None:
    """After a run: failed checks and steps (each step already printed a line as it ended)."""
    mats = 0
    for event in result.all_events:
        if event.is_step_materialization:
            mats += 1
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            ev = event.asset_check_evaluation_data
            if not ev.passed:
                click.echo(f"  check {ev.asset_key.to_user_string()}:{ev.check_name} FAILED")
        elif event.is_step_failure:
            click.echo(
                f"  FAILED {event.step_key}: {event.step_failure_data.error.message.strip()}",
                err=True,
            )
    click.echo(f"  {'run succeeded' if result.success else 'run failed'}: {mats} materializations")


def _writable(folder: Path) -> Path:
    """The folder, created if needed, after a probe write: an unwritable or full data folder
    is a one-line error here rather than a traceback from inside a step."""
    probe = folder / f".write-probe-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(probe, "wb") as fh:
            fh.write(b"\0" * 4096)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        raise click.ClickException(
            f"the data folder {folder} is not writable: {exc.strerror or exc} "
            f"(set {DATA_DIR_ENV} to a writable folder with free space)"
        ) from exc
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()
    return folder


@main.command("lake-check")
@click.option("--repair", is_flag=True, help="Re-materialize every damaged table (partition).")
def lake_check(repair: bool) -> None:
    """Verify every lake file against the checksum written with it; with --repair,
    re-materialize the damaged ones through Dagster (recorded in the instance)."""
    from hm_pipeline.lake import scan
    from hm_pipeline.settings import lake_dir

    damaged = scan(lake_dir())
    for d in damaged:
        part = f" [{d.partition}]" if d.partition else ""
        click.echo(f"DAMAGED {d.asset}{part}: {d.path} ({d.problem})")
    if not damaged:
        click.echo(f"lake {lake_dir()}: every file matches its checksum")
        return
    if not repair:
        raise click.ClickException(
            f"{len(damaged)} damaged file(s); `hm-pipeline lake-check --repair` regenerates them"
        )
    _writable(data_dir())
    from hm_pipeline.instance import ensure_dagster_home

    ensure_dagster_home()
    import dagster as dg

    from hm_pipeline.definitions import build_defs

    defs = build_defs()
    job = defs.resolve_implicit_global_asset_job_def()
    by_partition: dict[str | None, set[str]] = {}
    for d in damaged:
        by_partition.setdefault(d.partition, set()).add(d.asset)
    ok = True
    with dg.DagsterInstance.get() as instance:
        # unpartitioned tables first: partitioned ones may read them
        for partition in sorted(by_partition, key=lambda p: (p is not None, p or "")):
            keys = dg.AssetSelection.assets(*sorted(by_partition[partition]))
            selection = keys.required_multi_asset_neighbors().resolve(defs.resolve_asset_graph())
            click.echo(f"repairing {sorted(by_partition[partition])} [{partition or '-'}]:")
            result = job.execute_in_process(
                instance=instance,
                partition_key=partition,
                asset_selection=sorted(selection),
                raise_on_error=False,
                run_config=QUIET,
            )
            _summarize(result)
            ok &= result.success
    left = scan(lake_dir())
    if not ok or left:
        raise click.ClickException(f"repair incomplete: {len(left)} damaged file(s) left")
    click.echo(f"repaired {len(damaged)} file(s)")


@main.command()
@click.option("--port", default=3000, show_default=True)
def dev(port: int) -> None:
    """Start the Dagster UI on the pipeline, with the local instance."""
    from hm_pipeline.instance import REPO_ROOT, ensure_dagster_home

    ensure_dagster_home()
    os.environ["HM_DATA_DIR"] = str(data_dir())  # absolute, before leaving the caller's folder
    os.chdir(REPO_ROOT)
    dagster = str(Path(sys.executable).parent / "dagster")
    os.execv(dagster, [dagster, "dev", "-w", "workspace.yaml", "-p", str(port)])


@main.command()
@click.argument("what", type=click.Choice([*sorted(TARGETS), "e2e"]))
@click.option(
    "--scale",
    type=click.Choice(["tiny", "small", "medium", "full"]),
    default="full",
    show_default=True,
)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option(
    "--workdir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where the world is written [default: $HM_DATA_DIR/bench-<scale>]",
)
@click.option(
    "--results",
    type=click.Path(path_type=Path),
    default=Path("benchmarks/results.md"),
    show_default=True,
)
@click.option(
    "--resume",
    is_flag=True,
    help="e2e only: keep the steps an earlier run finished (its rows and outputs), run the rest.",
)
@click.option(
    "--retrain-every",
    type=int,
    default=4,
    show_default=True,
    help="e2e only: train the learned sources every N weeks from the first training week "
    "(4: once per run, serving the later training week, the validation and prediction weeks).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="e2e only: steps run at once, as the multiprocess executor's max_concurrent (2 on two "
    "cores); 1 runs them one after another.",
)
def bench(
    what: str,
    scale: str,
    seed: int,
    workdir: Path | None,
    results: Path,
    resume: bool,
    retrain_every: int,
    concurrency: int,
) -> None:
    """Time one stage in a child process and record wall time and peak RSS in the results file.
    `e2e`: everything from synthesis to the final recommendations, one child per step, written
    to benchmarks/e2e-<scale>.md."""
    from hm_pipeline.bench import run_benchmark

    workdir = workdir or data_dir() / f"bench-{scale}"
    if what == "e2e":
        from hm_pipeline.bench import BENCH_WEEK
        from hm_pipeline.e2e import run as run_e2e

        out = results.parent / f"e2e-{scale}.md"
        if workdir.exists() and not resume:  # no lake, models or reports of an earlier run
            import shutil

            for sub in ("lake", "models", "reports", "hm.duckdb"):
                p = workdir / sub
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        rows = run_e2e(
            scale,
            seed,
            BENCH_WEEK,
            workdir,
            out,
            resume=resume,
            retrain_every=retrain_every,
            concurrency=concurrency,
        )
        total = json.loads(out.with_suffix(".json").read_text())["summary"]["total_wall_s"]
        click.echo(f"e2e at scale {scale}: {total / 60:.1f} min over {len(rows)} steps -> {out}")
        return
    row = run_benchmark(what, scale, seed, workdir, results)
    click.echo(
        f"{what} at scale {scale}: {row['wall_s']:.1f}s, peak RSS {row['peak_rss_gb']:.2f} GB "
        f"-> {results}"
    )


@main.command()
@click.option(
    "--raw",
    "raw_path",
    type=click.Path(path_type=Path),
    default=None,
    help="A synthetic world's raw folder [default: $HM_DATA_DIR/raw]",
)
@click.option("--week", required=True, help="The week, named by its Wednesday (YYYY-MM-DD).")
@click.option(
    "--sample",
    type=int,
    default=20_000,
    show_default=True,
    help="How many of the week's buyers to score (0 = all).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="Write the oracle's top 12 per customer to this parquet file.",
)
def oracle(raw_path: Path | None, week: str, sample: int, seed: int, output: Path | None) -> None:
    """The oracle's top 12 for a sample of the week's buyers, and its MAP@12 on their purchases."""
    from hm_pipeline.metrics import hit_rate_at_k, map_at_k
    from hm_pipeline.synth.report import oracle_on_week

    start = _check_week(week)
    t0 = time.monotonic()
    top, truth = oracle_on_week(raw_path or raw_dir(), start, sample, seed)
    click.echo(
        f"oracle for {truth['customer_id'].n_unique():,} buyers of week {start}: "
        f"MAP@12 {map_at_k(top, truth):.4f}, hit rate@12 {hit_rate_at_k(top, truth):.4f}, "
        f"computed in {time.monotonic() - t0:.1f}s"
    )
    if output:
        top.write_parquet(output)


@main.command()
@click.option(
    "--data",
    "data_path",
    type=click.Path(path_type=Path),
    required=True,
    help="A data folder (raw/, lake/, reports/).",
)
@click.option("--week", default=None, help="The partition, named by its Wednesday (weekly assets).")
@click.option(
    "--partition", default=None, help="Any partition key (a week, or a shard like 00-of-04)."
)
@click.option(
    "--select",
    "selection",
    required=True,
    help="Comma-separated asset keys or groups (group:NAME).",
)
def materialize(data_path: Path, week: str | None, partition: str | None, selection: str) -> None:
    """Materialize some assets (of one partition) on a throwaway instance."""
    import dagster as dg

    if week is not None:
        _check_week(week)
    week = week or partition
    parts = [p.strip() for p in selection.split(",") if p.strip()]
    sel = dg.AssetSelection.assets(*[p for p in parts if not p.startswith("group:")])
    for p in parts:
        if p.startswith("group:"):
            sel = sel | dg.AssetSelection.groups(p.removeprefix("group:"))
    _materialize_throwaway(data_path / "raw", data_path / "lake", data_path / "reports", sel, week)


def _materialize_throwaway(
    raw: Path, lake: Path, reports: Path, selection, week: str | None
) -> None:
    """Run a selection on an ephemeral instance with resources on these folders; exit 1 on
    failure."""
    import dagster as dg

    from hm_pipeline.definitions import all_assets, all_checks
    from hm_pipeline.io_manager import ParquetIOManager
    from hm_pipeline.resources import ModelStore, RawFiles, Reports, Warehouse

    result = dg.materialize(
        [*all_assets, *all_checks],
        resources={
            "io_manager": ParquetIOManager(base_dir=str(lake), raw_dir=str(raw)),
            "raw_files": RawFiles(raw_dir=str(raw)),
            "reports": Reports(reports_dir=str(reports)),
            "model_store": ModelStore(models_dir=str(reports.parent / "models")),
            "warehouse": Warehouse(path=str(reports.parent / "hm.duckdb")),
        },
        selection=selection,
        partition_key=week,
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    _summarize(result)
    if not result.success:
        sys.exit(1)


@main.command()
@click.option("--raw", "raw_path", type=click.Path(path_type=Path), required=True)
@click.option("--lake", "lake_path", type=click.Path(path_type=Path), required=True)
def ingest(raw_path: Path, lake_path: Path) -> None:
    """Materialize the raw tables from RAW into LAKE on a throwaway instance (benchmarks)."""
    import dagster as dg

    _materialize_throwaway(
        raw_path, lake_path, lake_path.parent / "reports", dg.AssetSelection.groups("raw"), None
    )


if __name__ == "__main__":
    main()
