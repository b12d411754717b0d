"""GPU check of the torch models: each learned source trained and scored for one week of a
synthetic world on CUDA and on the CPU (HM_DEVICE), with wall time and MAP@12.

    python benchmarks/gpu_check.py --scale small --out benchmarks/gpu-check.md
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hm_pipeline.candidates import REGISTRY, SourceContext  # noqa: E402
from hm_pipeline.candidates.learned import LEARNED_SOURCES  # noqa: E402
from hm_pipeline.evaluation import evaluate_method  # noqa: E402
from hm_pipeline.ingest import (  # noqa: E402
    Calendar,
    ingest_articles,
    ingest_customers,
    ingest_transactions,
)
from hm_pipeline.settings import CALENDAR_END, CALENDAR_START  # noqa: E402
from hm_pipeline.splits import labels as week_labels  # noqa: E402
from hm_pipeline.synth.world import generate_world  # noqa: E402

WEEK = date(2020, 9, 16)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", default="small")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/gpu-check.md"))
    args = ap.parse_args()
    raw = Path(tempfile.mkdtemp()) / "raw"
    generate_world(args.scale, 42, raw)
    articles = ingest_articles(raw / "articles.csv").table
    customers, ids = ingest_customers(raw / "customers.csv")
    tx = ingest_transactions(
        raw / "transactions_train.csv",
        ids,
        articles.select("article_id"),
        Calendar(CALENDAR_START, CALENDAR_END),
    ).table.collect()
    ctx = SourceContext(articles, customers.table)
    labels = week_labels(tx.lazy(), WEEK).collect()
    buyers = labels["customer_id"].unique().sort()
    devices = ["cuda", "cpu"] if torch.cuda.is_available() else ["cpu"]
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    lines = [
        f"# GPU check: learned sources, {args.scale} world, week {WEEK}, {len(buyers)} buyers",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, GPU {gpu}, torch "
        f"{torch.__version__}. Command: `python benchmarks/gpu_check.py --scale {args.scale}`.",
        "",
        "| source | device | wall_s | map_at_12 | recall_at_200 | final_loss |",
        "|---|---|---|---|---|---|",
    ]
    for cls in LEARNED_SOURCES:
        for dev in devices:
            os.environ["HM_DEVICE"] = dev
            src = REGISTRY[cls.name]()
            t0 = time.monotonic()
            out = src.generate(tx.lazy(), buyers, WEEK, ctx)
            if dev == "cuda":
                torch.cuda.synchronize()
            wall = time.monotonic() - t0
            row = evaluate_method(cls.name, out, labels, articles.height)
            lines.append(
                f"| {cls.name} | {dev} | {wall:.1f} | {row['map_at_12']:.4f} | "
                f"{row['recall_at_200']:.4f} | {src.losses[-1]:.4f} |"
            )
            print(lines[-1], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
