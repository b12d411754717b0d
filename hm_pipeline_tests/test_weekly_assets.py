"""The weekly graph through Dagster on the tiny world: splits, features, candidates,
evaluation, the summary and the EDA report; and the dagster CLI users run."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from hm_pipeline.candidates import REGISTRY
from hm_pipeline.definitions import FEATURE_LEVEL, build_defs
from hm_pipeline.evaluation import EVALUATION_COLUMNS
from hm_pipeline_tests.conftest import run_dagster

REPO = Path(__file__).resolve().parents[1]
WEEK = "2020-09-16"


@pytest.fixture(scope="module")
def materialized(tiny_world: Path, tmp_path_factory: pytest.TempPathFactory):
    """The weekly job for one validation week and the prediction week, then the reports."""
    import shutil

    data = tmp_path_factory.mktemp("weekly")
    shutil.copytree(tiny_world, data / "raw")
    mp = pytest.MonkeyPatch()
    mp.setenv("HM_DATA_DIR", str(data))
    defs = build_defs()
    # a persistent instance, so the UI test can open what these runs recorded
    (data / "dagster_home").mkdir()
    instance = dg.DagsterInstance.local_temp(str(data / "dagster_home"))
    results = {
        "catalogue": defs.resolve_job_def("catalogue").execute_in_process(
            instance=instance, raise_on_error=False
        )
    }
    weekly = defs.resolve_job_def("weekly_pipeline")
    for week in ("2020-09-02", "2020-09-09"):  # what the rankers of WEEK learn from
        results[week] = weekly.execute_in_process(
            partition_key=week,
            instance=instance,
            raise_on_error=False,
            asset_selection=FEATURE_LEVEL,
        )
    results |= {
        week: weekly.execute_in_process(partition_key=week, instance=instance, raise_on_error=False)
        for week in (WEEK, "2020-09-23")
    }
    from hm_pipeline.ranking.shards import shard_keys

    for shard in shard_keys():
        results[shard] = defs.resolve_job_def("prediction").execute_in_process(
            partition_key=shard, instance=instance, raise_on_error=False
        )
    results["reports"] = defs.resolve_job_def("reports").execute_in_process(
        instance=instance, raise_on_error=False
    )
    mp.undo()
    yield data, results
    instance.dispose()


def test_runs_succeed(materialized) -> None:
    _, results = materialized
    assert all(r.success for r in results.values())


def test_evaluation_report_files(materialized) -> None:
    data, _ = materialized
    table = pl.read_csv(data / "reports" / f"evaluation_{WEEK}.csv")
    assert table.columns == EVALUATION_COLUMNS
    methods = set(table["method"])
    assert set(REGISTRY) | {"repurchase_then_popular", "oracle", "ranker_lightgbm"} <= methods
    assert "ranker_dlrm" in methods
    buyers = pl.read_parquet(data / "lake" / "labels" / f"{WEEK}.parquet")["customer_id"].n_unique()
    assert (table["n_customers"] == buyers).all()
    oracle = table.filter(pl.col("method") == "oracle")["map_at_12"].item()
    assert oracle >= table.filter(pl.col("method") != "oracle")["map_at_12"].max()
    preds = data / "reports" / "predictions" / WEEK
    sub = pl.read_csv(
        preds / "popularity_last_week.csv", schema_overrides={"prediction": pl.String}
    )
    assert sub.columns == ["customer_id", "prediction"]
    assert sub["customer_id"].str.contains(r"^[0-9a-f]{64}$").all()
    assert (
        sub["prediction"]
        .str.split(" ")
        .list.eval(pl.element().str.len_chars() == 10)
        .list.all()
        .all()
    )
    assert sub.height == buyers


def test_prediction_week_scores_everyone_and_is_not_evaluated(materialized) -> None:
    data, results = materialized
    to_score = pl.read_parquet(data / "lake" / "customers_to_score" / "2020-09-23.parquet")
    assert to_score.height == pl.read_parquet(data / "lake" / "customers.parquet").height
    assert not (data / "reports" / "evaluation_2020-09-23.csv").exists()
    union = pl.read_parquet(data / "lake" / "ranker_candidates" / "2020-09-23.parquet")
    per_customer = union.group_by("customer_id").len()["len"]
    assert per_customer.max() == 100  # the prediction week's cut (the validation week's: none)
    week_union = pl.read_parquet(data / "lake" / "ranker_candidates" / f"{WEEK}.parquet")
    assert week_union.group_by("customer_id").len()["len"].max() > 100
    mats = results["2020-09-23"].asset_materializations_for_node("evaluation_report")
    assert "prediction week" in mats[0].metadata["note"].value


def test_summary_and_eda_render(materialized) -> None:
    data, results = materialized
    summary = results["reports"].asset_materializations_for_node("evaluation_summary")[0]
    assert "data:image/png;base64," in summary.metadata["summary"].value
    assert "| oracle |" in summary.metadata["summary"].value
    eda = results["reports"].asset_materializations_for_node("eda_report")[0]
    assert eda.metadata["report"].value.count("data:image/png;base64,") >= 6
    assert (data / "reports" / "eda" / "weekly_sales.png").stat().st_size > 1000
    assert (data / "reports" / "evaluation_summary.png").exists()


def test_union_recall_and_cold_start_reports(materialized) -> None:
    data, _ = materialized
    recall = pl.read_csv(data / "reports" / f"union_recall_{WEEK}.csv").row(0, named=True)
    table = pl.read_csv(data / "reports" / f"evaluation_{WEEK}.csv")
    best_single = table.filter(
        ~pl.col("method").str.starts_with("ranker") & (pl.col("method") != "oracle")
    )
    # the union holds at least what the best source finds in its top 12
    assert recall["recall"] >= best_single["recall_at_12"].max()
    cold = pl.read_csv(data / "reports" / f"evaluation_cold_{WEEK}.csv")
    assert {"popularity_last_week", "ranker_lightgbm"} <= set(cold["method"])


def test_final_recommendations_for_every_customer(materialized, tmp_path) -> None:
    import duckdb

    from hm_pipeline.recommend import lookup

    data, results = materialized
    customers = pl.read_csv(data / "raw" / "customers.csv")
    sub = pl.read_csv(
        data / "reports" / "submission.csv", schema_overrides={"prediction": pl.String}
    )
    assert sub.columns == ["customer_id", "prediction"]
    assert sub["customer_id"].to_list() == customers["customer_id"].to_list()
    assert (sub["prediction"].str.split(" ").list.len() == 12).all()
    with duckdb.connect(str(data / "hm.duckdb"), read_only=True) as con:
        n = con.execute("SELECT count(DISTINCT customer_hex) FROM recommendations").fetchone()[0]
        assert n == customers.height
        # the views over the lake answer joins an analyst would write
        top = con.execute(
            "SELECT a.product_type_name, count(*) FROM recommendations r "
            "JOIN articles a USING (article_id) GROUP BY 1 ORDER BY 2 DESC LIMIT 1"
        ).fetchone()
        assert top[1] > 0
        assert con.execute("SELECT count(*) FROM transactions").fetchone()[0] > 0
    someone = customers["customer_id"][0]
    rows = lookup(data / "hm.duckdb", someone)
    assert rows["rank"].to_list() == list(range(1, 13))
    assert rows["prod_name"].is_not_null().all()
    from click.testing import CliRunner

    from hm_pipeline.cli import main

    out = CliRunner().invoke(main, ["recommend", someone], env={"HM_DATA_DIR": str(data)})
    assert out.exit_code == 0, out.output
    assert len(out.output.strip().splitlines()) == 12 and " 1. " in out.output
    missing = CliRunner().invoke(main, ["recommend", "f" * 64], env={"HM_DATA_DIR": str(data)})
    assert missing.exit_code != 0 and "no recommendations" in missing.output
    mat = results["reports"].asset_materializations_for_node("recommendations")[0]
    assert mat.metadata["ranker"].value in ("ranker_lightgbm", "ranker_dlrm")
    # the shards scored only the ranker the recommendations use
    from hm_pipeline.ranking.shards import shard_keys

    for shard in shard_keys():
        scored = results[shard].asset_materializations_for_node("prediction_scores")[0]
        assert scored.metadata["rankers"].value == mat.metadata["ranker"].value


def test_sampled_evaluation_beside_the_full_ranking(materialized) -> None:
    data, _ = materialized
    table = pl.read_csv(data / "reports" / f"sampled_evaluation_{WEEK}.csv")
    assert set(table["method"]) == {"popularity_last_week", "neumf", "multvae", "twotower"}
    buyers = pl.read_parquet(data / "lake" / "labels" / f"{WEEK}.parquet")["customer_id"].n_unique()
    assert (table["n_customers"] == buyers).all()
    for col in ["sampled_hr_at_10", "sampled_ndcg_at_10", "full_hr_at_10", "full_ndcg_at_10"]:
        assert table[col].is_between(0, 1).all()


def test_negative_strategy_report(materialized) -> None:
    data, _ = materialized
    md = (data / "reports" / f"negative_strategies_{WEEK}.md").read_text()
    for strategy in ["loo_random", "loo_unpopular", "weekly_random", "neighbourhood"]:
        assert f"| neumf_{strategy} |" in md
    assert "Krichene" in md
    table = pl.read_parquet(data / "lake" / "negative_strategy_report.parquet")
    assert table.height == 5
    assert table["n_customers"].n_unique() == 1  # the same customers for every strategy


def test_dagster_asset_materialize_cli_on_a_fresh_instance(
    tiny_world: Path, tmp_path: Path
) -> None:
    """What users run in CI: the dagster CLI, a fresh instance, one partition."""
    import shutil

    shutil.copytree(tiny_world, tmp_path / "raw")
    out = run_dagster(
        "asset",
        "materialize",
        "-m",
        "hm_pipeline.definitions",
        "--select",
        "*customer_features,*candidates_repurchase",
        "--partition",
        WEEK,
        data_dir=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    feats = pl.read_parquet(tmp_path / "lake" / "customer_features" / f"{WEEK}.parquet")
    assert feats.height > 0 and "t_price_3m" in feats.columns
    cands = pl.read_parquet(tmp_path / "lake" / "candidates_repurchase" / f"{WEEK}.parquet")
    assert cands["rank"].min() == 1


def test_learned_sources_keep_their_weights_in_the_model_store(materialized) -> None:
    import json

    data, _ = materialized
    for name in ("neumf", "multvae"):
        folder = data / "models" / name / WEEK
        assert (folder / "model.pt").stat().st_size > 1000
        config = json.loads((folder / "config.json").read_text())
        assert config["week"] == WEEK and config["source"] == name and config["losses"]
    assert not list((data / "lake").rglob("*neumf*model*"))  # nothing pickled into the lake


def test_the_ui_shows_the_graph_and_renders_the_evaluation(materialized) -> None:
    """`dagster dev` on the instance the runs above recorded, opened in headless Chromium: every
    group's lineage lists its assets, and the evaluation summary's markdown table and plot
    render. Screenshots go to the data folder's reports/ and the repo's data/reports/."""
    from hm_pipeline_tests.ui import CHROMIUM_FLAGS, chromium, dagster_dev, dismiss_newsletter

    playwright = pytest.importorskip("playwright.sync_api")
    data, _ = materialized
    browser_path = chromium()
    groups: dict[str, set[str]] = {}
    for node in build_defs().resolve_asset_graph().asset_nodes:
        if node.is_materializable:
            groups.setdefault(node.group_name, set()).add(node.key.to_user_string())
    shots = [data / "reports", REPO / "data" / "reports"]
    with (
        dagster_dev(data / "dagster_home", data) as url,
        playwright.sync_playwright() as pw,
    ):
        browser = pw.chromium.launch(executable_path=browser_path, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1600, "height": 2400})
        page.set_default_timeout(60_000)
        group_url = f"{url}/locations/hm_pipeline.definitions/asset-groups"
        page.goto(f"{group_url}/evaluation")  # the lineage graph of one group
        dismiss_newsletter(page)
        page.get_by_text("evaluation_summary", exact=True).first.wait_for()
        for folder in shots:
            folder.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=folder / "ui_asset_graph.png")
        for group, assets in sorted(groups.items()):  # every group's assets, as a list
            page.goto(f"{group_url}/{group}/list")
            page.get_by_text(min(assets), exact=True).first.wait_for()
            page.wait_for_timeout(500)
            shown = {line.strip() for line in page.inner_text("body").splitlines()}
            assert assets <= shown, (group, sorted(assets - shown))
        page.goto(f"{url}/assets/evaluation_summary")
        page.get_by_text("[Show Markdown]").first.wait_for()
        dismiss_newsletter(page)
        page.get_by_text("[Show Markdown]").first.click()
        dialog = page.get_by_role("dialog")
        table = dialog.locator("table").first
        table.wait_for()
        rows = table.locator("tr").all_inner_texts()
        assert any(r.split()[0] == "oracle" for r in rows[1:])
        assert any(r.split()[0] == "ranker_lightgbm" for r in rows[1:])
        page.wait_for_function(
            "() => { const i = document.querySelector('[role=dialog] img');"
            " return i && i.complete && i.naturalWidth > 100 }"
        )
        src = dialog.locator("img").first.get_attribute("src")
        assert src.startswith("data:image/png;base64,")
        for folder in shots:
            page.screenshot(path=folder / "ui_evaluation_summary.png")
        browser.close()
    assert (data / "reports" / "ui_evaluation_summary.png").stat().st_size > 10_000


def test_a_learned_source_retrained_every_two_weeks_through_dagster(
    tiny_world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """retrain_every_weeks=2 from 2020-09-02: the run for 2020-09-09 trains the model for
    2020-09-02 (history before it), stores it there and records which model served it."""
    import json
    import shutil

    shutil.copytree(tiny_world, tmp_path / "raw")
    monkeypatch.setenv("HM_DATA_DIR", str(tmp_path))
    defs = build_defs()
    instance = dg.DagsterInstance.ephemeral()
    assert defs.resolve_job_def("raw_tables").execute_in_process(instance=instance).success
    config = {"retrain_every_weeks": 2, "retrain_from": "2020-09-02"}
    result = defs.resolve_job_def("weekly_pipeline").execute_in_process(
        partition_key="2020-09-09",
        instance=instance,
        asset_selection=[dg.AssetKey("customers_to_score"), dg.AssetKey("candidates_twotower")],
        run_config={"ops": {"candidates_twotower": {"config": config}}},
    )
    assert result.success
    models = tmp_path / "models" / "twotower"
    trained = json.loads((models / "2020-09-02" / "config.json").read_text())
    assert trained["week"] == "2020-09-02"
    pointer = json.loads((models / "2020-09-09" / "trained_for.json").read_text())
    assert pointer["week"] == "2020-09-02" and not (models / "2020-09-09" / "model.pt").exists()
    meta = result.asset_materializations_for_node("candidates_twotower")[0].metadata
    assert meta["model_trained_for"].value == "2020-09-02"
    cands = pl.read_parquet(tmp_path / "lake" / "candidates_twotower" / "2020-09-09.parquet")
    assert cands.height > 0
