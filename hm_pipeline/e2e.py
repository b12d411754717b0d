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


def step_graph(steps: list[tuple[str, list[str] | None, str | None]]):
    """For each planned step (as `plan` lists them, synthesis first), the earlier steps it waits
    for and its concurrency pool. A step waits for every earlier step of an op that writes one
    of its assets' inputs in another partition (a superset of what its partition mapping reads)
    or in its own partition unless the mapping reads only earlier weeks (ranker_models reads
    the weeks before W, not W); and for the earlier partitions of its own op (a learned source
    serves later weeks with the model its first week trained, through the model store, which
    the asset graph does not show; the customer shards of one week do not wait for each other).
    Every step waits for synthesis."""
    import dagster as dg

    from hm_pipeline.definitions import build_defs

    graph = build_defs().resolve_asset_graph()
    op_of, pool_of, weekly_ops = {}, {}, set()
    for node in graph.asset_nodes:
        if node.is_materializable:
            op_of[node.key] = node.assets_def.node_def.name
            pool_of[op_of[node.key]] = node.assets_def.node_def.pool
            if isinstance(node.assets_def.partitions_def, dg.TimeWindowPartitionsDefinition):
                weekly_ops.add(op_of[node.key])
    upstream: dict[str, set[str]] = {}  # ops whose outputs an op reads, in any partition
    same_week: dict[str, set[str]] = {}  # ... and those it reads in its own partition
    for node in graph.asset_nodes:
        if not node.is_materializable:
            continue
        op = op_of[node.key]
        for parent in node.parent_keys:
            if parent not in op_of:
                continue
            upstream.setdefault(op, set()).add(op_of[parent])
            mapping = node.assets_def.get_partition_mapping(parent)
            past_only = (
                isinstance(mapping, dg.TimeWindowPartitionMapping) and mapping.end_offset < 0
            )
            if not past_only:
                same_week.setdefault(op, set()).add(op_of[parent])
    out = []
    for i, (name, _, partition) in enumerate(steps):
        ups, mine = upstream.get(name, set()), same_week.get(name, set())
        after = {
            j
            for j, (other, keys, part) in enumerate(steps[:i])
            if keys is None
            or (other == name and name in weekly_ops)
            or (other in ups and (part != partition or other in mine))
        }
        out.append((frozenset(after), pool_of.get(name)))
    return out


def pool_limit(config: Path | None = None) -> int:
    """How many steps of one pool run at a time: `concurrency: pools: default_limit` of the
    instance's dagster.yaml (1 when it says nothing)."""
    import yaml

    from hm_pipeline.instance import REPO_ROOT

    text = (config or REPO_ROOT / "dagster.yaml").read_text()
    pools = ((yaml.safe_load(text) or {}).get("concurrency") or {}).get("pools") or {}
    return int(pools.get("default_limit") or 1)


class RssSampler:
    """The resident memory of the running steps' processes (and their children) summed, sampled
    every `every` seconds in a thread; `peak_gb` is the largest sum seen. Pages two processes
    share count twice, and a peak shorter than the interval can be missed."""

    def __init__(self, every: float = 0.5):
        import threading

        self.pids: set[int] = set()
        self.peak_gb = 0.0
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        import psutil

        while not self._stop.wait(self._every):
            total = 0
            for pid in list(self.pids):
                try:
                    proc = psutil.Process(pid)
                    total += sum(
                        p.memory_info().rss for p in [proc, *proc.children(recursive=True)]
                    )
                except psutil.Error:  # ended between the listing and the reading
                    continue
            self.peak_gb = max(self.peak_gb, total / 2**30)


def run(
    scale: str,
    seed: int,
    week: str,
    workdir: Path,
    out: Path,
    resume: bool = False,
    retrain_every: int = 1,
    concurrency: int = 2,
) -> list[dict]:
    """Run every step in a child process, at most `concurrency` at a time (the multiprocess
    executor's limit within a run; here across the weeks too), each starting when the steps it
    reads from have finished, at most `pool_limit()` steps of one pool (the torch steps; the
    candidate sources) at a time; write the figures after each step. With `resume`, the steps
    an earlier run finished (its rows in `out`) are kept and not run again. `retrain_every` > 1
    trains the learned sources every that many weeks from the first training week (4: once per
    run, for the first training week, serving the other three)."""
    cli = [sys.executable, "-m", "hm_pipeline.cli"]
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows: list[dict] = finished_rows(out) if resume else []
    done = {(r["step"], r["partition"]) for r in rows}
    before = earlier_wall_s(rows)
    env = os.environ | {
        "HM_DATA_DIR": str(workdir),
        "HM_RETRAIN_EVERY_WEEKS": str(retrain_every),
        "HM_RETRAIN_FROM": training_weeks(week)[0],
    }
    if concurrency > 1:  # steps share the cores: idle OpenMP threads sleep, not spin
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    limit = pool_limit()
    settings = {
        "retrain_every_weeks": retrain_every,
        "retrain_from": training_weeks(week)[0],
        "concurrency": concurrency,
        "pool_limit": limit,
        "omp_wait_policy": env.get("OMP_WAIT_POLICY", ""),
    }
    synth = [*cli, "synth", "--scale", scale, "--seed", str(seed), "--out", str(workdir / "raw"),
             "--force"]  # fmt: skip
    steps = [("synth", None, None), *plan(week)]
    graph = step_graph(steps)
    finished = {i for i, (n, _, p) in enumerate(steps) if (n, p or "") in done}
    todo = [i for i in range(len(steps)) if i not in finished]
    running: dict[int, tuple[int, float, subprocess.Popen]] = {}  # pid -> step, start, process
    failed: list[str] = []
    t_run = time.monotonic()

    def startable(i: int) -> bool:
        after, pool = graph[i]
        busy = sum(1 for j, _, _ in running.values() if pool and graph[j][1] == pool)
        return after <= finished and busy < limit

    def start(i: int) -> None:
        name, keys, partition = steps[i]
        if keys is None:
            cmd = synth
        else:
            part = ["--partition", partition] if partition else []
            cmd = [*cli, "materialize", "--data", str(workdir), *part, "--select", ",".join(keys)]
        print(f"[e2e] {name} {partition or ''}", flush=True)
        proc = subprocess.Popen(cmd, env=env)
        running[proc.pid] = (i, time.monotonic(), proc)
        sampler.pids.add(proc.pid)

    with RssSampler() as sampler:
        try:
            while todo or running:
                while not failed and len(running) < concurrency:
                    ready = next((i for i in todo if startable(i)), None)
                    if ready is None:
                        break
                    todo.remove(ready)
                    start(ready)
                if not running:
                    break  # a failure stopped the launches (or nothing left can start)
                pid, status, usage = os.wait4(-1, 0)
                if pid not in running:
                    continue
                i, t0, proc = running.pop(pid)
                sampler.pids.discard(pid)
                code = os.waitstatus_to_exitcode(status)
                proc.returncode = code  # reaped here, not by the Popen object
                name, keys, partition = steps[i]
                t1 = time.monotonic()
                rows.append(
                    {
                        "run": started,
                        "settings": settings,
                        "step": name,
                        "assets": ",".join(keys or ["(raw CSV files)"]),
                        "partition": partition or "",
                        "wall_s": round(t1 - t0, 1),
                        "start_s": round(t0 - t_run, 3),
                        "end_s": round(t1 - t_run, 3),
                        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
                        "peak_rss_gb": round(usage.ru_maxrss / 2**20, 2),
                        "ok": code == 0,
                    }
                )
                if code == 0:
                    finished.add(i)
                else:
                    failed.append(f"{name} {partition or ''} failed with exit code {code}")
                _write(rows, out, scale, seed, week, before + t1 - t_run, sampler.peak_gb)
        finally:
            for _, _, proc in running.values():
                proc.kill()
    if failed or todo:
        raise SystemExit("[e2e] " + ("; ".join(failed) or f"{len(todo)} steps could not start"))
    return rows


def earlier_wall_s(rows: list[dict]) -> float:
    """The end-to-end seconds of the steps an earlier run finished (kept by --resume): for each
    run, from its first kept step's start to its last one's end; the steps summed for rows
    without those times."""
    spans: dict[str, list[float]] = {}
    total = 0.0
    for r in rows:
        if "start_s" in r:
            lo, hi = spans.setdefault(r["run"], [r["start_s"], r["end_s"]])
            spans[r["run"]] = [min(lo, r["start_s"]), max(hi, r["end_s"])]
        else:
            total += r["wall_s"]
    return total + sum(hi - lo for lo, hi in spans.values())


def _timeline(rows: list[dict]):
    """Each run's timed steps as one sweep: after every start or end (ends first at a tie), the
    run, the moment, the steps running from then on and their peak RSS summed. Rows without
    start and end times are left out."""
    timed = [r for r in rows if "start_s" in r]
    for run in sorted({r["run"] for r in timed}):
        events = sorted(
            (t, d, r["peak_rss_gb"])
            for r in timed
            if r["run"] == run
            for t, d in ((r["start_s"], 1), (r["end_s"], -1))
        )
        n, gb = 0, 0.0
        for t, d, rss in events:
            n, gb = n + d, gb + d * rss
            yield run, t, n, gb


def running_at_once(rows: list[dict]) -> dict[int, float]:
    """Seconds during which exactly n steps were running, for each n (steps of each run, by
    their start and end): how much of the run used the second slot."""
    out: dict[int, float] = {}
    points = list(_timeline(rows))
    for (run, t, n, _), (next_run, t_next, _, _) in zip(points, points[1:], strict=False):
        if n and run == next_run:
            out[n] = out.get(n, 0.0) + t_next - t
    return dict(sorted(out.items()))


def overlap_rss_gb(rows: list[dict]) -> float:
    """An upper bound of the memory the steps held at once: the largest sum of the peak RSS of
    the steps that were running at the same moment (steps of one run, by their start and end;
    rows without them count alone)."""
    alone = max((r["peak_rss_gb"] for r in rows), default=0.0)
    return round(max([alone, *(gb for _, _, _, gb in _timeline(rows))]), 2)


def _write(rows, out: Path, scale, seed, week, total, machine_peak_gb: float = 0.0) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    runs = sorted({r["run"] for r in rows})
    concurrency = max(r.get("settings", {}).get("concurrency", 1) for r in rows)
    per_pool = max(r.get("settings", {}).get("pool_limit", 1) for r in rows)
    summary = {
        "runs": runs,
        "scale": scale,
        "seed": seed,
        "validation_week": week,
        "started": runs[0],
        "machine": machine(),
        "steps_done": len(rows),
        "total_wall_s": round(total, 1),
        "steps_summed_s": round(sum(r["wall_s"] for r in rows), 1),
        "cpu_summed_s": round(sum(r.get("cpu_s", 0) for r in rows), 1),
        "concurrency": concurrency,
        "peak_rss_gb": max(r["peak_rss_gb"] for r in rows),
        "concurrent_peak_rss_gb": round(machine_peak_gb, 2),
        "concurrent_peak_rss_bound_gb": overlap_rss_gb(rows),
        "target": "<= 60 min end to end, peak RSS <= 16 GB",
        "skipped": SKIPPED,
    }
    out.with_suffix(".json").write_text(json.dumps({"summary": summary, "steps": rows}, indent=1))
    by_step = _by(rows, "step")
    ranking_steps = {"ranker_candidates", "ranker_features", "ranker_models", "rankers"}
    ranking = sum(
        r["wall_s"] for r in rows if r["partition"] == week and r["step"] in ranking_steps
    )
    top = sorted(by_step.items(), key=lambda kv: -kv[1])[:10]
    cpu = _by(rows, "step", "cpu_s")
    summed = summary["steps_summed_s"]
    predicted = prediction_minutes(rows)
    lines = [
        f"# End-to-end benchmark ({scale})",
        "",
        f"Written by `hm-pipeline bench e2e --scale {scale} --seed {seed}` (runs started "
        f"{', '.join(runs)}; {machine()}). One child process per Dagster op, at most "
        f"{concurrency} at a time (the multiprocess executor's limit within a run; here across "
        "the weeks too, as far as their inputs allow), a step starting once the steps it reads "
        "from have finished (at most "
        f"{per_pool} step of each dagster.yaml pool at a time: `torch`, the embeddings and the "
        "rankers; `learned`, NeuMF, MultVAE and two-tower; `candidates`, the other sources), so "
        "each row's peak RSS is that step's own and its wall time includes waiting for the "
        "core the other step uses (OpenMP's idle threads sleep rather than spin, "
        "OMP_WAIT_POLICY=PASSIVE, when steps share the cores); `cpu s` is the step's "
        "own processor time. Each step includes its child's start-up (importing Dagster; torch "
        "and LightGBM only in the steps that use them). A resumed run (`--resume`) keeps the "
        "rows of the steps an earlier run finished; the `run` column says which run measured "
        "each row.",
        "",
        f"- steps finished: {len(rows)}; end to end: {total / 60:.1f} min (the steps' wall "
        f"times summed: {summary['steps_summed_s'] / 60:.1f} min; processor time summed: "
        f"{summary['cpu_summed_s'] / 60:.1f} min, {summary['cpu_summed_s'] / max(total, 1):.2f} "
        f"cores on average); largest peak RSS of a step: "
        f"{summary['peak_rss_gb']} GB; of the steps running at once: "
        f"{summary['concurrent_peak_rss_gb']} GB sampled every 0.5 s, at most "
        f"{summary['concurrent_peak_rss_bound_gb']} GB (the peaks of overlapping steps summed) "
        f"(target: {summary['target']})",
        "- steps running at once: "
        + ", ".join(f"{n} for {sec / 60:.1f} min" for n, sec in running_at_once(rows).items()),
        "- not run: " + "; ".join(f"{k} ({v})" for k, v in SKIPPED.items()),
        "",
        "By partition (minutes, the steps' wall times summed; catalogue = the unpartitioned "
        "steps): " + ", ".join(f"{p} {v / 60:.1f}" for p, v in _by(rows, "partition").items()),
        f"- the validation week's union, feature table and rankers: {ranking / 60:.1f} min",
        f"- the prediction for every customer: {predicted['shards']} shards scored in "
        f"{predicted['scoring']:.1f} min (largest peak RSS {predicted['peak_rss_gb']} GB); with "
        f"the prediction week's union, rankers and the recommendations {predicted['serving']:.1f} "
        f"min; its candidate sources took another {predicted['sources']:.1f} min",
        "",
        "Where the time goes (steps summed over partitions; share of the steps' summed time):",
        "",
        "| step | wall s | cpu s | share |",
        "|---|---|---|---|",
        *[f"| {k} | {v:.0f} | {cpu.get(k, 0):.0f} | {v / max(summed, 1):.0%} |" for k, v in top],
        "",
        "| run | retrain every | step | assets | partition | start min | wall s | cpu s | "
        "peak RSS GB | ok |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *[
            f"| {r['run']} | {r.get('settings', {}).get('retrain_every_weeks', 1)} | "
            f"{r['step']} | {r['assets']} | {r['partition']} | "
            f"{_minutes(r.get('start_s'))} | {r['wall_s']} | {r.get('cpu_s', '')} | "
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
        if (
            r["partition"] == week
            and r["step"] in ("ranker_candidates", "ranker_models", "rankers")
        )
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


def _by(rows: list[dict], key: str, value: str = "wall_s") -> dict[str, float]:
    """A figure (wall seconds by default) summed by a row field (an empty partition is the
    catalogue); rows without the figure count 0."""
    out: dict[str, float] = {}
    for r in rows:
        out[r[key] or "catalogue"] = out.get(r[key] or "catalogue", 0) + r.get(value, 0)
    return out


def _minutes(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds / 60:.1f}"
