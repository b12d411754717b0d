"""Operations users run: the weekly schedule and a backfill over the validation weeks from the
CLI (`dagster job backfill`, the README's command)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import dagster as dg
import pytest

from hm_pipeline.definitions import build_defs
from hm_pipeline.partitions import CALENDAR

REPO = Path(__file__).resolve().parents[1]


def test_the_schedule_runs_the_week_that_just_completed() -> None:
    schedule = build_defs().resolve_schedule_def("weekly_pipeline_schedule")
    assert schedule.cron_schedule == "0 0 * * 3"  # Wednesdays, when a week ends
    assert schedule.job_name == "weekly_pipeline"
    for now, week in [
        (datetime(2020, 9, 23, 0, 5), "2020-09-16"),
        (datetime(2020, 9, 16, 0, 5), "2020-09-09"),
        (datetime(2020, 9, 30, 0, 5), "2020-09-23"),
    ]:
        ctx = dg.build_schedule_context(scheduled_execution_time=now)
        (request,) = schedule.evaluate_tick(ctx).run_requests
        assert request.partition_key == week


def test_loading_the_definitions_imports_no_model_library(tmp_path: Path) -> None:
    """Every step process (the multiprocess executor's, the e2e benchmark's) and the code
    server import the definitions: torch, LightGBM and matplotlib (about 5 s together) are for
    the steps that use them, which import them themselves."""
    heavy = ["torch", "lightgbm", "sklearn", "matplotlib", "timm", "sentence_transformers"]
    code = (
        "import sys, hm_pipeline.definitions, hm_pipeline.cli; "
        f"print([m for m in {heavy!r} if m in sys.modules])"
    )
    env = os.environ | {"HM_DATA_DIR": str(tmp_path / "data")}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "[]"


def test_backfill_over_the_validation_weeks_from_the_cli(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    weeks = [str(w) for w in CALENDAR.validation_weeks]
    env = os.environ | {"DAGSTER_HOME": str(home), "HM_DATA_DIR": str(tmp_path / "data")}
    out = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "job", "backfill", "-m",
         "hm_pipeline.definitions", "-j", "weekly_pipeline", "--from", weeks[0], "--to",
         weeks[-1], "--noprompt"],
        cwd=REPO, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        (backfill,) = instance.get_backfills()
        assert list(backfill.partition_names) == weeks
        runs = instance.get_runs()
        # queued for the daemon (`dagster dev`), one run per week, all of the weekly job
        assert sorted(r.tags["dagster/partition"] for r in runs) == weeks
        assert {r.job_name for r in runs} == {"weekly_pipeline"}
        assert {r.status for r in runs} == {dg.DagsterRunStatus.QUEUED}
        assert {r.tags["dagster/backfill"] for r in runs} == {backfill.backfill_id}


def test_the_end_to_end_plan_covers_every_asset_in_dependency_order() -> None:
    from hm_pipeline.e2e import SKIPPED, plan
    from hm_pipeline.ranking.shards import shard_keys

    steps = plan("2020-09-16")
    graph = build_defs().resolve_asset_graph()
    done: set[tuple[str, str | None]] = set()
    for _, keys, partition in steps:
        for key in keys:
            node = graph.get(dg.AssetKey(key))
            for parent in node.parent_keys:
                pnode = graph.get(parent)
                if not pnode.is_materializable or parent.path[0] == "evaluation_report":
                    continue  # a dependency by ordering only (the summary reads report files)
                if pnode.partitions_def is None:
                    assert (parent.path[0], None) in done, (key, partition, parent)
                elif pnode.partitions_def == node.partitions_def:
                    assert (parent.path[0], partition) in done, (key, partition, parent)
            done.add((key, partition))
    materializable = {n.key.path[0] for n in graph.asset_nodes if n.is_materializable} - {
        "transaction_drops",
        "transaction_drops_rejects",
        *SKIPPED,
    }
    assert {k for k, _ in done} == materializable
    week_parts = {p for _, p in done if p}
    assert week_parts == {"2020-09-02", "2020-09-09", "2020-09-16", "2020-09-23", *shard_keys()}
    # the training weeks stop at the features: no rankers or evaluation for them
    assert ("ranker_lightgbm", "2020-09-09") not in done
    assert ("evaluation_report", "2020-09-16") in done


def test_a_resumed_end_to_end_run_keeps_the_finished_steps(tmp_path, monkeypatch) -> None:
    """--resume: the rows an earlier run finished are kept (with the run that measured them)
    and their steps skipped; the retraining setting reaches every step's environment."""
    import json

    from hm_pipeline import e2e

    out = tmp_path / "e2e-tiny.md"
    earlier = [
        {"step": "synth", "assets": "(raw CSV files)", "partition": "", "wall_s": 5.0,
         "peak_rss_gb": 1.0, "ok": True},
        {"step": "articles", "assets": "articles", "partition": "", "wall_s": 2.0,
         "peak_rss_gb": 1.0, "ok": False},
    ]  # fmt: skip
    summary = {"started": "2026-01-01 00:00 UTC"}
    out.with_suffix(".json").write_text(json.dumps({"summary": summary, "steps": earlier}))
    kept = e2e.finished_rows(out)
    assert [r["step"] for r in kept] == ["synth"]  # the failed step is run again
    assert kept[0]["run"] == "2026-01-01 00:00 UTC"

    seen: list[tuple[list[str], dict]] = []

    class Stop(Exception):
        pass

    def popen(cmd, env):
        seen.append((cmd, env))
        raise Stop

    monkeypatch.setattr(e2e.subprocess, "Popen", popen)
    with pytest.raises(Stop):
        e2e.run("tiny", 1, "2020-09-16", tmp_path, out, resume=True, retrain_every=4)
    cmd, env = seen[0]
    assert "synth" not in cmd and "articles" in ",".join(cmd)  # synth kept, next step run
    assert env["HM_RETRAIN_EVERY_WEEKS"] == "4" and env["HM_RETRAIN_FROM"] == "2020-09-02"
    assert e2e.training_weeks("2020-09-16") == ["2020-09-02", "2020-09-09"]
    e2e._write(kept, out, "tiny", 1, "2020-09-16", 5.0)
    assert "catalogue 0.1" in out.read_text()  # synth's 5 s, summed by partition

    def row(step, partition, wall, rss=1.0):
        return {"step": step, "assets": step, "partition": partition, "wall_s": wall,
                "peak_rss_gb": rss, "ok": True, "run": "r"}  # fmt: skip

    rows = [
        row("candidates_repurchase", "2020-09-23", 60.0),
        row("candidates_repurchase", "2020-09-16", 600.0),  # another week: not counted
        row("ranker_candidates", "2020-09-23", 120.0),
        row("ranker_models", "2020-09-23", 120.0),
        row("rankers", "2020-09-23", 60.0),
        row("rankers", "2020-09-16", 900.0),
        row("prediction_scores", "00-of-02", 300.0, 4.5),
        row("prediction_scores", "01-of-02", 240.0, 4.0),
        row("recommendations", "", 60.0),
    ]
    got = e2e.prediction_minutes(rows)
    assert got == {"shards": 2, "scoring": 9.0, "serving": 15.0, "sources": 1.0,
                   "peak_rss_gb": 4.5}  # fmt: skip
    e2e._write(rows, out, "tiny", 1, "2020-09-16", 5.0)
    assert "2 shards scored in 9.0 min (largest peak RSS 4.5 GB)" in out.read_text()


def _overlap(a: dict, b: dict) -> bool:
    return a["start_s"] < b["end_s"] and b["start_s"] < a["end_s"]


def test_the_end_to_end_steps_run_two_at_a_time_after_what_they_read(tmp_path, monkeypatch):
    """The benchmark runs the plan as the multiprocess executor runs a job: two steps at once,
    one step of a pool at a time, each after the steps that write its inputs (each step here a
    short sleep in a child process; its real command is recorded)."""
    from hm_pipeline import e2e
    from hm_pipeline.ranking.shards import shard_keys

    steps = [("synth", None, None), *e2e.plan("2020-09-16")]
    graph = e2e.step_graph(steps)
    index = {(name, p or ""): i for i, (name, _, p) in enumerate(steps)}
    op_of = {k: name for name, keys, _ in steps for k in keys or []}
    asset_graph = build_defs().resolve_asset_graph()
    read = 0
    for i, (name, keys, partition) in enumerate(steps):
        after, _ = graph[i]
        assert 0 in after or i == 0  # synthesis first
        for key in keys or []:
            child = dg.AssetKey(key)
            for parent in asset_graph.get(child).parent_keys:
                op = op_of.get(parent.to_user_string())
                if op is None:
                    continue  # not materialized by the benchmark (drops, skipped reports)
                if asset_graph.get(parent).partitions_def is None:
                    parts = [""]
                else:  # the partitions this step's partition mapping reads
                    got = asset_graph.get_parent_partition_keys_for_child(partition, parent, child)
                    parts = got.partitions_subset.get_partition_keys()
                for part in parts:
                    j = index.get((op, part))
                    if j is not None:  # planned (the benchmark skips the other weeks)
                        assert j in after, (name, partition, op, part)
                        read += 1
    assert read > 300
    # ranker_models trains on the weeks before W while W's candidates are still being found
    models = index[("ranker_models", "2020-09-16")]
    assert index[("ranker_features", "2020-09-09")] in graph[models][0]
    assert index[("ranker_features", "2020-09-16")] not in graph[models][0]
    assert index[("candidates_twotower", "2020-09-16")] not in graph[models][0]
    for parent in ("ranker_features", "labels"):  # what Dagster loads for it: W-2 and W-1 only
        got = asset_graph.get_parent_partition_keys_for_child(
            "2020-09-16", dg.AssetKey(parent), dg.AssetKey("ranker_models")
        )
        assert sorted(got.partitions_subset.get_partition_keys()) == ["2020-09-02", "2020-09-09"]
    # a learned source serves later weeks with the model of its first week
    assert (
        index[("candidates_neumf", "2020-09-02")]
        in graph[index[("candidates_neumf", "2020-09-23")]][0]
    )
    assert graph[index[("ranker_models", "2020-09-16")]][1] == "torch"
    # the learned sources have a pool beside the other sources'; the customer shards have none
    # and do not wait for each other (each restores the models ranker_models saved)
    assert graph[index[("candidates_neumf", "2020-09-16")]][1] == "learned"
    assert graph[index[("candidates_repurchase", "2020-09-16")]][1] == "candidates"
    shards = {index[("prediction_scores", s)] for s in shard_keys()}
    assert len(shards) > 1
    assert all(graph[s][1] is None and not shards & graph[s][0] for s in shards)
    assert index[("ranker_models", "2020-09-23")] in graph[min(shards)][0]

    popen = subprocess.Popen
    commands: list[list[str]] = []

    def sleeper(cmd, env):
        commands.append(cmd)
        fail = "2020-09-23" in cmd and "ranker_models" in cmd[-1] and env.get("E2E_FAIL")
        return popen(["false"] if fail else ["sleep", "0.05"])

    monkeypatch.setattr(e2e.subprocess, "Popen", sleeper)
    out = tmp_path / "e2e-tiny.md"
    rows = e2e.run("tiny", 1, "2020-09-16", tmp_path, out, concurrency=2)
    assert len(rows) == len(steps) == len(commands) and all(r["ok"] for r in rows)
    by = {(r["step"], r["partition"]): r for r in rows}
    timed = [by[(name, p or "")] for name, _, p in steps]
    for i, row in enumerate(timed):
        for j in graph[i][0]:
            assert row["start_s"] >= timed[j]["end_s"], (row["step"], timed[j]["step"])
        at_its_start = [o for o in timed if o["start_s"] <= row["start_s"] < o["end_s"]]
        assert len(at_its_start) <= 2
        pool = graph[i][1]
        assert not [o for k, o in enumerate(timed) if k != i and graph[k][1] == pool and pool
                    and _overlap(o, row)]  # fmt: skip
    assert any(_overlap(a, b) for a, b in zip(timed, timed[1:], strict=False))  # two at once
    summary = __import__("json").loads(out.with_suffix(".json").read_text())["summary"]
    assert summary["total_wall_s"] < summary["steps_summed_s"]
    assert summary["cpu_summed_s"] == round(sum(r["cpu_s"] for r in rows), 1)
    assert "end to end:" in out.read_text()

    # a failing step: nothing new starts, the running step finishes, the run says which failed
    commands.clear()
    monkeypatch.setenv("E2E_FAIL", "1")
    with pytest.raises(SystemExit, match="ranker_models 2020-09-23 failed"):
        e2e.run("tiny", 1, "2020-09-16", tmp_path, out, concurrency=2)
    rows = __import__("json").loads(out.with_suffix(".json").read_text())["steps"]
    assert [r["step"] for r in rows if not r["ok"]] == ["ranker_models"]
    assert "recommendations" not in {r["step"] for r in rows}
    assert len(rows) == len(commands) < len(steps)


def test_the_memory_of_overlapping_steps_is_bounded_by_their_peaks_summed() -> None:
    from hm_pipeline import e2e

    def row(start, end, rss, run="r"):
        return {"start_s": start, "end_s": end, "peak_rss_gb": rss, "run": run, "wall_s": 1.0}

    rows = [row(0, 10, 4.0), row(5, 20, 6.0), row(10, 30, 3.0), row(12, 14, 2.5)]
    assert e2e.overlap_rss_gb(rows) == 11.5  # 6 + 3 + 2.5 from 12 s to 14 s
    assert e2e.overlap_rss_gb([*rows, row(0, 50, 9.0, run="other")]) == 11.5  # another run
    assert e2e.overlap_rss_gb([{"peak_rss_gb": 7.0, "run": "old"}]) == 7.0  # no times
    assert e2e.earlier_wall_s([row(0, 10, 1), row(5, 30, 1), row(3, 8, 1, run="x")]) == 35.0
    # 0-5 one, 5-10 two, 10-12 two, 12-14 three, 14-20 two, 20-30 one
    assert e2e.running_at_once(rows) == {1: 15.0, 2: 13.0, 3: 2.0}
