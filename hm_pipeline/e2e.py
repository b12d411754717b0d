"""The full-scale end-to-end benchmark: synthesize, ingest, the catalogue, everything weekly for
one validation week (and the two weeks its rankers learn from), the prediction week, its
customer shards and the final recommendations. Every step (one Dagster op: an asset, or the
assets one op writes) runs in its own child process, so its wall time and peak RSS are its
own; each finished step is written at once to `benchmarks/e2e-<scale>.md` (and .json), so an
interrupted run still leaves what it measured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from hm_pipeline.bench import machine

SKIPPED = {  # reports that read every week or retrain models for comparison only
    "eda_report": "exploratory plots over all weeks",
    "negative_strategy_report": "NeuMF trained four more times to compare negative strategies",
}


def plan(week: str) -> list[tuple[str, list[str], str | None]]:
    """(label, asset keys of one op, partition) in an order that respects dependencies."""
    import dagster as dg

    from hm_pipeline.assets.drops import transaction_drops
    from hm_pipeline.definitions import FEATURE_LEVEL, WEEKLY, build_defs
    from hm_pipeline.partitions import CALENDAR
    from hm_pipeline.ranking.shards import shard_keys

    defs = build_defs()
    graph = defs.resolve_asset_graph()
    order = {k: i for i, k in enumerate(graph.toposorted_asset_keys)}
    ops: dict[str, list[dg.AssetKey]] = {}
    for node in graph.asset_nodes:
        if node.is_materializable:
            ops.setdefault(node.assets_def.node_def.name, []).append(node.key)
    ops = {n: sorted(ks, key=order.get) for n, ks in ops.items()}
    by_first = sorted(ops.items(), key=lambda item: min(order[k] for k in item[1]))
    skip = set(transaction_drops.keys) | {dg.AssetKey(k) for k in SKIPPED}
    weekly, feature_level = set(WEEKLY), set(FEATURE_LEVEL)
    training = training_weeks(week)
    prediction = str(CALENDAR.prediction_week)
    steps: list[tuple[str, list[str], str | None]] = []

    def add(keys_filter, partition):
        for name, keys in by_first:
            if any(k in skip for k in keys) or not keys_filter(keys):
                continue
            steps.append((name, [k.to_user_string() for k in keys], partition))

    add(lambda ks: not (set(ks) & weekly) and ks[0].path[0] not in _LATE, None)
    for t in training:
        add(lambda ks: set(ks) <= feature_level, t)
    for p in (week, prediction):
        add(lambda ks: set(ks) <= weekly, p)
    for shard in shard_keys():
        steps.append(("prediction_scores", ["prediction_scores"], shard))
    for name in ("evaluation_summary", "recommendations"):
        steps.append((name, [name], None))
    return steps


_LATE = {"prediction_scores", "evaluation_summary", "recommendations", *SKIPPED}


def finished_rows(out: Path) -> list[dict]:
    """The steps an earlier run recorded as finished in `out`'s .json (for --resume), each
    tagged with the time that run started."""
    path = out.with_suffix(".json")
    if not path.exists():
        return []
    earlier = json.loads(path.read_text())
    started = earlier["summary"]["started"]
    return [{**r, "run": r.get("run", started)} for r in earlier["steps"] if r["ok"]]


def training_weeks(week: str) -> list[str]:
    """The two weeks the validation week's rankers learn from (the first holds out nothing,
    the second is the early-stopping week)."""
    from datetime import date, timedelta

    w = date.fromisoformat(week)
    return [str(w - timedelta(days=7 * i)) for i in (2, 1)]


def run(
    scale: str,
    seed: int,
    week: str,
    workdir: Path,
    out: Path,
    resume: bool = False,
    retrain_every: int = 1,
) -> list[dict]:
    """Run every step in a child process; write the figures after each one. With `resume`,
    the steps an earlier run finished (its rows in `out`) are kept and not run again.
    `retrain_every` > 1 trains the learned sources every that many weeks from the first
    training week (4: once per run, for the first training week, serving the other three)."""
    cli = [sys.executable, "-m", "hm_pipeline.cli"]
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows: list[dict] = finished_rows(out) if resume else []
    done = {(r["step"], r["partition"]) for r in rows}
    t_start = time.monotonic() - sum(r["wall_s"] for r in rows)
    env = os.environ | {
        "HM_DATA_DIR": str(workdir),
        "HM_RETRAIN_EVERY_WEEKS": str(retrain_every),
        "HM_RETRAIN_FROM": training_weeks(week)[0],
    }
    settings = {"retrain_every_weeks": retrain_every, "retrain_from": training_weeks(week)[0]}
    synth = [*cli, "synth", "--scale", scale, "--seed", str(seed), "--out", str(workdir / "raw"),
             "--force"]  # fmt: skip
    for name, keys, partition in [("synth", None, None), *plan(week)]:
        if (name, partition or "") in done:
            continue
        if keys is None:
            cmd = synth
        else:
            part = ["--partition", partition] if partition else []
            cmd = [*cli, "materialize", "--data", str(workdir), *part, "--select", ",".join(keys)]
        print(f"[e2e] {name} {partition or ''}", flush=True)
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        rows.append(
            {
                "run": started,
                "settings": settings,
                "step": name,
                "assets": ",".join(keys or ["(raw CSV files)"]),
                "partition": partition or "",
                "wall_s": round(time.monotonic() - t0, 1),
                "peak_rss_gb": round(usage.ru_maxrss / 2**20, 2),
                "ok": code == 0,
            }
        )
        _write(rows, out, scale, seed, week, time.monotonic() - t_start)
        if code != 0:
            raise SystemExit(f"[e2e] {name} {partition or ''} failed with exit code {code}")
    return rows


def _write(rows, out: Path, scale, seed, week, total) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    runs = sorted({r["run"] for r in rows})
    summary = {
        "runs": runs,
        "scale": scale,
        "seed": seed,
        "validation_week": week,
        "started": runs[0],
        "machine": machine(),
        "steps_done": len(rows),
        "total_wall_s": round(total, 1),
        "peak_rss_gb": max(r["peak_rss_gb"] for r in rows),
        "target": "<= 60 min end to end, peak RSS <= 16 GB",
        "skipped": SKIPPED,
    }
    out.with_suffix(".json").write_text(json.dumps({"summary": summary, "steps": rows}, indent=1))
    by_step = _by(rows, "step")
    ranking_steps = {"ranker_candidates", "ranker_features", "rankers"}
    ranking = sum(
        r["wall_s"] for r in rows if r["partition"] == week and r["step"] in ranking_steps
    )
    top = sorted(by_step.items(), key=lambda kv: -kv[1])[:10]
    predicted = prediction_minutes(rows)
    lines = [
        f"# End-to-end benchmark ({scale})",
        "",
        f"Written by `hm-pipeline bench e2e --scale {scale} --seed {seed}` (runs started "
        f"{', '.join(runs)}; {machine()}). One child process per Dagster op, so each row's peak "
        "RSS is that step's own; the total (the sum of the steps) includes each child's "
        "start-up (importing Dagster; torch and LightGBM only in the steps that use them). A "
        "resumed run (`--resume`) keeps the rows of the steps an earlier run finished; the "
        "`run` column says which run measured each row.",
        "",
        f"- steps finished: {len(rows)}; wall time so far: {total / 60:.1f} min; "
        f"largest peak RSS: {summary['peak_rss_gb']} GB (target: {summary['target']})",
        "- not run: " + "; ".join(f"{k} ({v})" for k, v in SKIPPED.items()),
        "",
        "By partition (minutes, steps summed; catalogue = the unpartitioned steps): "
        + ", ".join(f"{p} {v / 60:.1f}" for p, v in _by(rows, "partition").items()),
        f"- the validation week's union, feature table and rankers: {ranking / 60:.1f} min",
        f"- the prediction for every customer: {predicted['shards']} shards scored in "
        f"{predicted['scoring']:.1f} min (largest peak RSS {predicted['peak_rss_gb']} GB); with "
        f"the prediction week's union, rankers and the recommendations {predicted['serving']:.1f} "
        f"min; its candidate sources took another {predicted['sources']:.1f} min",
        "",
        "Where the time goes (steps summed over partitions):",
        "",
        "| step | wall s | share |",
        "|---|---|---|",
        *[f"| {k} | {v:.0f} | {v / max(total, 1):.0%} |" for k, v in top],
        "",
        "| run | retrain every | step | assets | partition | wall s | peak RSS GB | ok |",
        "|---|---|---|---|---|---|---|---|",
        *[
            f"| {r['run']} | {r.get('settings', {}).get('retrain_every_weeks', 1)} | "
            f"{r['step']} | {r['assets']} | {r['partition']} | {r['wall_s']} | "
            f"{r['peak_rss_gb']} | {'yes' if r['ok'] else 'FAILED'} |"
            for r in rows
        ],
    ]
    out.write_text("\n".join(lines) + "\n")


def prediction_minutes(rows: list[dict]) -> dict:
    """The prediction week's figures from the rows: the shards' scoring, that plus its union,
    rankers and the recommendations, and its candidate sources (minutes)."""
    from hm_pipeline.partitions import CALENDAR

    week = str(CALENDAR.prediction_week)
    shards = [r for r in rows if r["step"] == "prediction_scores"]
    scoring = sum(r["wall_s"] for r in shards)
    around = sum(
        r["wall_s"]
        for r in rows
        if (r["partition"] == week and r["step"] in ("ranker_candidates", "rankers"))
        or r["step"] == "recommendations"
    )
    sources = sum(
        r["wall_s"] for r in rows if r["partition"] == week and r["step"].startswith("candidates_")
    )
    return {
        "shards": len(shards),
        "scoring": scoring / 60,
        "serving": (scoring + around) / 60,
        "sources": sources / 60,
        "peak_rss_gb": max((r["peak_rss_gb"] for r in shards), default=0.0),
    }


def _by(rows: list[dict], key: str) -> dict[str, float]:
    """Wall seconds summed by a row field (an empty partition is the catalogue)."""
    out: dict[str, float] = {}
    for r in rows:
        out[r[key] or "catalogue"] = out.get(r[key] or "catalogue", 0) + r["wall_s"]
    return out
