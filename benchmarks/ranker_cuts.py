"""What fewer negatives per customer and a cut of the labelled weeks' candidate union cost in
MAP@12 and buy in LightGBM's training time, on a materialized world's validation week.

`ranker_models` trains on the feature tables of the two weeks before W: every positive and at
most `max_negatives` negatives per customer (RankerConfig), early stopping on W-1, refit on
both. The union of a labelled week holds every candidate of every source's top `per_source`;
`UnionConfig.max_per_customer` cuts it to a customer's best N (best rank in any source first,
as the prediction week's `prediction_max_per_customer`). For each variant this trains LightGBM
on the two weeks before W (the cut applied to both training weeks' tables and to W's, so the
model is trained and scored as the pipeline would) and scores W's table with the compiled
model; MAP@12 is on all of W's buyers (those with no candidate left after the cut score 0).

`--study depth` compares shallower unions instead: `UnionConfig.per_source` (how deep into
each source's list the union reaches) below the tables' 40. A union of depth d is the depth-40
table with every source's rank and score beyond d set null, `n_sources` and `best_rank`
counted again and the pairs no source keeps dropped: the table `ranker_candidates` and
`ranker_features` would build with `per_source` d (the other features are the pair's,
customer's and article's own; `ranking.union.shallower`, tested against
`candidate_union`).

    python benchmarks/ranker_cuts.py --data data/bench-full --week 2020-09-16
    python benchmarks/ranker_cuts.py --data data/bench-full --week 2020-09-16 --study depth
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import polars as pl

from hm_pipeline.evaluation import markdown_table
from hm_pipeline.metrics import map_at_k
from hm_pipeline.ranking import lgbm, training
from hm_pipeline.ranking.shards import score_frames
from hm_pipeline.ranking.union import keep_best, shallower

# (label, max_negatives, cut per customer, union depth per source) by study
STUDIES = {
    "cuts": (
        ("negatives 30, uncut (the default before)", 30, None, None),
        ("negatives 20, uncut (the default)", 20, None, None),
        ("negatives 15, uncut", 15, None, None),
        ("negatives 30, cut 150", 30, 150, None),
        ("negatives 20, cut 150", 20, 150, None),
    ),
    "depth": (
        ("per_source 40 (the default)", 20, None, None),
        ("per_source 30", 20, None, 30),
        ("per_source 25", 20, None, 25),
        ("per_source 20", 20, None, 20),
    ),
}
OUTPUTS = {"cuts": "ranker-cuts.md", "depth": "union-depth.md"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path("data/bench-full"))
    ap.add_argument("--week", default="2020-09-16")
    ap.add_argument("--study", choices=sorted(STUDIES), default="cuts")
    ap.add_argument("--output", type=Path, default=None)
    ap.add_argument("--chunk-customers", type=int, default=20_000)
    args = ap.parse_args()
    output = args.output or Path(__file__).with_name(OUTPUTS[args.study])
    lake = args.data / "lake"
    feats = {p.stem: p for p in (lake / "ranker_features").glob("*.parquet")}
    labels = {p.stem: pl.read_parquet(p) for p in (lake / "labels").glob("*.parquet")}
    week = args.week
    earlier = sorted(e for e in feats if e < week and e in labels)[-2:]
    truth = labels[week].select("customer_id", "article_id")
    rows = []
    for name, negatives, n, depth in STUDIES[args.study]:
        t = time.perf_counter()
        older, latest = training.assemble(
            {w: keep_best(shallower(pl.scan_parquet(feats[w]), depth), n) for w in earlier},
            labels,
            week,
            2,
            negatives,
            0,
        )
        assembled = time.perf_counter() - t
        t = time.perf_counter()
        booster, info = lgbm.train_lgbm(older, latest, lgbm.LGBMConfig())
        trained = time.perf_counter() - t
        now = keep_best(shallower(pl.scan_parquet(feats[week]), depth), n)
        chunks = training.customer_chunks(now, args.chunk_customers)
        top = score_frames(chunks, {"lightgbm": lgbm.CompiledRanker.of(booster)}, 12)
        row = {
            "variant": name,
            "scored rows": now.select(pl.len()).collect().item(),
            "train rows": older.height,
            "refit rows": info.get("refit_rows"),
            "rounds": info["best_iteration"],
            "assemble s": f"{assembled:.1f}",
            "LightGBM s": f"{trained:.1f}",
            "MAP@12": f"{map_at_k(top, truth, 12):.5f}",
        }
        print(row, flush=True)
        rows.append(row)
    buyers = truth["customer_id"].n_unique()
    write(rows, args.data, week, earlier, buyers, output, args.study)


TITLES = {
    "cuts": "The rankers' training rows: fewer negatives, a cut union",
    "depth": "How deep the union reaches into each source (`UnionConfig.per_source`)",
}


def write(
    rows: list[dict],
    data: Path,
    week: str,
    earlier: list[str],
    buyers: int,
    output: Path,
    study: str = "cuts",
):
    """The results file."""
    flag = "" if study == "cuts" else f" --study {study}"
    lines = [
        f"# {TITLES[study]}",
        "",
        f"Written by `python benchmarks/ranker_cuts.py --data {data} --week {week}{flag}` "
        f"({platform.machine()}, {lgbm.LGBMConfig.num_threads} LightGBM threads). LightGBM "
        f"trained on {', '.join(earlier)} (early stopping on the latest, refit on both) "
        f"and scored on {week}'s table under the same cut; MAP@12 on "
        f"{buyers:,} buyers. `LightGBM s`: datasets and boosting; "
        "`assemble s`: choosing and reading the training rows.",
        "",
        markdown_table(pl.DataFrame(rows)),
        "",
    ]
    output.write_text("\n".join(lines) + "\n")
    print(output.read_text())


if __name__ == "__main__":
    main()
