"""The hm-pipeline command line."""

from __future__ import annotations

import os
import re
from pathlib import Path

import dagster as dg
from click.testing import CliRunner

from hm_pipeline import schema as S
from hm_pipeline.cli import main


def test_synth_writes_a_world(tmp_path: Path) -> None:
    out = tmp_path / "raw"
    res = CliRunner().invoke(main, ["synth", "--scale", "tiny", "--seed", "3", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert (out / S.TRANSACTIONS_FILE).exists() and (out / S.SYNTHETIC_DIR / "world.npz").exists()
    assert "weeks: 105/105" in res.output  # progress is shown


def test_synth_refuses_to_overwrite_real_files(tmp_path: Path) -> None:
    (tmp_path / S.ARTICLES_FILE).write_text("article_id\n")
    res = CliRunner().invoke(main, ["synth", "--scale", "tiny", "--out", str(tmp_path)])
    assert res.exit_code != 0
    assert "not a synthetic world" in res.output
    assert (tmp_path / S.ARTICLES_FILE).read_text() == "article_id\n"


def test_synth_report_prints_figures_beside_the_real_ones(tiny_world: Path) -> None:
    res = CliRunner().invoke(main, ["synth", "--report", str(tiny_world)])
    assert res.exit_code == 0, res.output
    assert "| figure |" in res.output and "real H&M" in res.output
    assert "last_week_popularity_map12" in res.output


def test_run_rejects_a_week_that_does_not_start_on_wednesday(data_dir: Path) -> None:
    res = CliRunner().invoke(main, ["run", "--week", "2020-09-17"])
    assert res.exit_code == 2
    assert "Thursday" in res.output


def test_run_materializes_through_the_instance(data_dir: Path) -> None:
    res = CliRunner().invoke(main, ["run", "--week", "2020-09-16"])
    assert res.exit_code == 0, res.output
    assert re.search(r"\] transactions +done", res.output) and "run succeeded" in res.output
    # the weeks its rankers learn from were filled in first
    assert "week 2020-09-02 (features for the rankers of 2020-09-16)" in res.output
    home = data_dir / "dagster_home"
    assert (home / "dagster.yaml").exists()
    assert (data_dir / "lake" / "transactions.parquet").exists()
    assert os.environ["DAGSTER_HOME"] == str(home)
    with dg.DagsterInstance.get() as instance:  # DAGSTER_HOME, as set by the CLI
        runs = instance.get_runs()
        assert sorted(r.job_name for r in runs) == ["catalogue", *["weekly_pipeline"] * 3]
        weeks = {r.tags.get("hm/week") for r in runs if r.job_name == "weekly_pipeline"}
        assert weeks == {"2020-09-02", "2020-09-09", "2020-09-16"}
        assert instance.get_latest_materialization_event(dg.AssetKey("transactions")) is not None


def test_oracle_command_scores_a_weeks_buyers(tiny_world: Path, tmp_path: Path) -> None:
    out = tmp_path / "oracle.parquet"
    args = ["oracle", "--raw", str(tiny_world), "--week", "2020-09-16", "--output", str(out)]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert "MAP@12" in res.output
    import polars as pl

    top = pl.read_parquet(out)
    assert top.group_by("customer_id").len()["len"].eq(12).all()


def test_progress_logger_prints_one_line_per_step(capsys) -> None:
    import logging

    from hm_pipeline.progress import _StepLines

    h = _StepLines()
    for msg in [
        "run - 1 - candidates_repurchase - STEP_SUCCESS - Finished execution of step "
        '"candidates_repurchase" in 1.25s.',
        'run - 1 - labels - LOADED_INPUT - Loaded input "transactions"',
        'run - 1 - rankers - STEP_FAILURE - Execution of step "rankers" failed.',
    ]:
        h.emit(logging.LogRecord("x", logging.DEBUG, "", 0, msg, None, None))
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2
    assert "candidates_repurchase" in out[0] and "done" in out[0] and "1.25s" in out[0]
    assert "rankers" in out[1] and "FAILED" in out[1]


def test_evaluation_table_rewrites_the_readme_block(tmp_path) -> None:
    import polars as pl
    from click.testing import CliRunner

    from hm_pipeline.cli import README_BEGIN, README_END, main
    from hm_pipeline.evaluation import EVALUATION_COLUMNS

    reports = tmp_path / "reports"
    reports.mkdir()
    row = dict.fromkeys(EVALUATION_COLUMNS, 0.25) | {"method": "ranker_lightgbm", "n_customers": 3}
    pl.DataFrame([row]).write_csv(reports / "evaluation_2020-09-16.csv")
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{README_BEGIN}\nold table\n{README_END}\noutro\n")
    out = CliRunner().invoke(
        main, ["evaluation-table", "--readme", str(readme)], env={"HM_DATA_DIR": str(tmp_path)}
    )
    assert out.exit_code == 0, out.output
    text = readme.read_text()
    assert "old table" not in text and "| ranker_lightgbm | 0.2500 | 0.2500 |" in text
    assert text.startswith("intro\n") and text.endswith("outro\n")
