"""Benchmarks: run a stage in a child process, record wall time and peak RSS in a file."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

TARGETS = {  # (seconds, GB) at full scale, from the issues
    "synth": (15 * 60, 8.0),
    "ingest": (3 * 60, 8.0),
    "oracle": (5 * 60, None),  # "a sample of 20k customers at full scale within a few minutes"
    "features": (2 * 60, 8.0),  # customer and article features of one week
    "candidates": (10 * 60, 12.0),  # every heuristic source for one week's buyers
    "models": (2 * 15 * 60, 12.0),  # NeuMF and Mult-VAE, each <= 15 min
    "twotower": (15 * 60, 12.0),
    "text": (10 * 60, None),  # first-time text embeddings of the catalogue
    "text_cached": (30, None),  # the same with every text in the cache
    "image": (20 * 60, None),  # image backbone training + embedding of every image
}
BENCH_WEEK = "2020-09-16"
CATALOGUE = ("text", "text_cached", "image")  # unpartitioned: no week
SELECTIONS = {
    "features": "customer_features,article_features",
    "candidates": "customers_to_score,"
    + ",".join(
        f"candidates_{n}"
        for n in (
            "popularity_last_week",
            "popularity_time_decayed",
            "popularity_age_group",
            "repurchase",
            "same_product_code",
            "bought_together",
            "customer_similarity",
        )
    ),
    "models": "customers_to_score,candidates_neumf,candidates_multvae",
    "twotower": "customers_to_score,candidates_twotower",
    "text": "text_embeddings",
    "text_cached": "text_embeddings",
    "image": "image_embeddings",
}


def machine() -> str:
    """A one-line description of this machine."""
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    py = platform.python_version()
    return f"{platform.machine()}, {os.cpu_count()} cores, {mem_gb:.0f} GB RAM, Python {py}"


def _command(what: str, scale: str, seed: int, workdir: Path) -> list[str]:
    cli = [sys.executable, "-m", "hm_pipeline.cli"]
    if what == "synth":
        return [*cli, "synth", "--scale", scale, "--seed", str(seed), "--out", str(workdir / "raw")]
    if what == "ingest":
        if not (workdir / "raw" / "articles.csv").exists():
            subprocess.run(_command("synth", scale, seed, workdir), check=True)
        return [*cli, "ingest", "--raw", str(workdir / "raw"), "--lake", str(workdir / "lake")]
    if what == "oracle":
        if not (workdir / "raw" / "articles.csv").exists():
            subprocess.run(_command("synth", scale, seed, workdir), check=True)
        return [
            *cli,
            "oracle",
            "--raw",
            str(workdir / "raw"),
            "--week",
            "2020-09-16",
            "--sample",
            "20000",
        ]
    if what in SELECTIONS:
        if not (workdir / "lake" / "transactions.parquet").exists():
            subprocess.run(_command("ingest", scale, seed, workdir), check=True)
        if what == "text":  # first time: no cached texts
            shutil.rmtree(workdir / "models" / "text_cache", ignore_errors=True)
        week = [] if what in CATALOGUE else ["--week", BENCH_WEEK]
        return [*cli, "materialize", "--data", str(workdir), *week, "--select", SELECTIONS[what]]
    raise ValueError(what)


def run_benchmark(what: str, scale: str, seed: int, workdir: Path, results: Path) -> dict:
    """Run `what` at `scale` in a child process and record it in `results` (markdown, with a
    JSON twin beside it)."""
    cmd = _command(what, scale, seed, workdir)
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd)
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak, not earlier children's
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - t0
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, cmd)
    peak_kb = usage.ru_maxrss
    target_s, target_gb = TARGETS.get(what, (None, None))
    row = {
        "benchmark": what,
        "scale": scale,
        "wall_s": round(wall, 1),
        "peak_rss_gb": round(peak_kb / 2**20, 2),
        "target": _target(target_s, target_gb) if scale == "full" else "",
        "machine": machine(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": f"hm-pipeline bench {what} --scale {scale} --seed {seed}",
    }
    _record(row, results)
    return row


def _target(seconds: float | None, gb: float | None) -> str:
    time_part = ""
    if seconds:
        time_part = f"<= {seconds / 60:.0f} min" if seconds >= 60 else f"<= {seconds:.0f} s"
    parts = [time_part, f"<= {gb:.0f} GB" if gb else ""]
    return ", ".join(p for p in parts if p)


def _record(row: dict, results: Path) -> None:
    store = results.with_suffix(".json")
    rows = json.loads(store.read_text()) if store.exists() else []
    rows = [r for r in rows if (r["benchmark"], r["scale"]) != (row["benchmark"], row["scale"])] + [
        row
    ]
    rows.sort(key=lambda r: (r["benchmark"], r["scale"]))
    results.parent.mkdir(parents=True, exist_ok=True)
    store.write_text(json.dumps(rows, indent=1) + "\n")
    cols = ["benchmark", "scale", "wall_s", "peak_rss_gb", "target", "machine", "date", "command"]
    lines = [
        "# Benchmark results",
        "",
        "Written by `hm-pipeline bench ...`; a row is the latest run of that benchmark and scale.",
        "Peak RSS is the largest resident set of the child process (getrusage).",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
    ]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    results.write_text("\n".join(lines) + "\n")
