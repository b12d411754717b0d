"""LightGBM's categorical handling, compared on every evaluated week of a materialized world.

For each validation week W it trains the ranker exactly as the `rankers` asset does (the
feature tables and labels of W-2 and W-1, early stopping on W-1, refit on both) under a few
settings of the categorical codes, scores W's candidates and writes MAP@12 on W's buyers beside
the best single source of evaluation_<W>.csv to benchmarks/lgbm-categoricals.md.

    python benchmarks/lgbm_categoricals.py --data data
"""

from __future__ import annotations

import argparse
from pathlib import Path

import polars as pl

from hm_pipeline.metrics import map_at_k
from hm_pipeline.ranking import lgbm, training

VARIANTS = {
    "LightGBM categorical, cat_smooth 10": lgbm.LGBMConfig(categorical=True),
    "categorical, cat_smooth 50, min_data_per_group 500": lgbm.LGBMConfig(
        categorical=True, cat_smooth=50.0, min_data_per_group=500
    ),
    "codes as numbers (the default)": lgbm.LGBMConfig(categorical=False),
}
NOT_SOURCES = {"oracle", "ranker_lightgbm", "ranker_dlrm", "repurchase_then_popular"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path("data"))
    ap.add_argument("--output", type=Path, default=Path("benchmarks/lgbm-categoricals.md"))
    args = ap.parse_args()
    lake, reports = args.data / "lake", args.data / "reports"
    weeks = sorted(p.stem.removeprefix("evaluation_") for p in reports.glob("evaluation_2*.csv"))
    feats = {p.stem: p for p in (lake / "ranker_features").glob("*.parquet")}
    labels = {p.stem: pl.read_parquet(p) for p in (lake / "labels").glob("*.parquet")}
    rows = []
    for week in weeks:
        earlier = sorted(w for w in feats if w < week and w in labels)[-2:]
        train, valid = training.assemble(
            {w: pl.read_parquet(feats[w]) for w in earlier}, labels, week, 2, 30, 0
        )
        now = pl.read_parquet(feats[week])
        truth = labels[week].select("customer_id", "article_id")
        table = pl.read_csv(reports / f"evaluation_{week}.csv")
        sources = table.filter(~pl.col("method").is_in(list(NOT_SOURCES)))
        best = sources.sort("map_at_12", descending=True).row(0, named=True)
        row = {"week": week, "best source": f"{best['method']} {best['map_at_12']:.4f}"}
        for name, cfg in VARIANTS.items():
            booster, _ = lgbm.train_lgbm(train, valid, cfg)
            top = training.ranked(now, lgbm.predict(booster, now), 12)
            row[name] = round(map_at_k(top, truth, 12), 4)
            print(week, name, row[name], flush=True)
        rows.append(row)
    frame = pl.DataFrame(rows)
    cols = frame.columns
    lines = [
        "# LightGBM: categorical codes",
        "",
        f"Written by `python benchmarks/lgbm_categoricals.py --data {args.data}`: MAP@12 of the "
        "LightGBM ranker on each validation week under each setting, beside the best single "
        "source of that week's evaluation.",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
        *["| " + " | ".join(str(v) for v in r) + " |" for r in frame.iter_rows()],
        "",
        "| mean | | " + " | ".join(f"{frame[c].mean():.4f}" for c in cols[2:]) + " |",
    ]
    args.output.write_text("\n".join(lines) + "\n")
    print(args.output.read_text())


if __name__ == "__main__":
    main()
