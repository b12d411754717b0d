"""LightGBM lambdarank over the feature table, grouped by (week, customer)."""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
import polars as pl

from hm_pipeline.ranking.features import feature_columns
from hm_pipeline.ranking.training import group_sizes

MAX_QUERY_ROWS = 10_000  # LightGBM's limit on the rows of one query in lambdarank


@dataclass(frozen=True)
class LGBMConfig:
    """Booster parameters; early stopping on the validation week, then a refit on every
    training week with the best number of rounds."""

    num_boost_round: int = 300
    learning_rate: float = 0.1
    num_leaves: int = 31
    min_data_in_leaf: int = 50
    feature_fraction: float = 0.8
    lambdarank_truncation_level: int = 20
    early_stopping_rounds: int = 20
    refit_on_all_weeks: bool = True
    # learn from the most recent training week alone, early stopping on the weeks before it,
    # no refit: less than half the training time; MAP@12 level with the refit at full scale
    # (one week, benchmarks/lgbm-refit.md) but below it in all six weeks of the small world
    # (benchmarks/lgbm-refit-small.md), so off by default
    learn_from_latest: bool = False
    # categorical codes (department, product type, colour, ...) as plain numbers by default:
    # LightGBM's categorical splits over-fit the 250-level department code (its largest gain);
    # numeric codes gave a better MAP@12 in every validation week of the small world
    # (benchmarks/lgbm-categoricals.md, python benchmarks/lgbm_categoricals.py)
    categorical: bool = False
    cat_smooth: float = 10.0
    min_data_per_group: int = 100
    max_cat_threshold: int = 32
    num_threads: int = 2
    seed: int = 0

    def to_dict(self) -> dict:
        """A JSON-friendly dict."""
        return asdict(self)


def _params(cfg: LGBMConfig) -> dict:
    return {
        "objective": "lambdarank",
        "metric": "map",
        "eval_at": [12],
        "learning_rate": cfg.learning_rate,
        "num_leaves": cfg.num_leaves,
        "min_data_in_leaf": cfg.min_data_in_leaf,
        "feature_fraction": cfg.feature_fraction,
        "lambdarank_truncation_level": cfg.lambdarank_truncation_level,
        "cat_smooth": cfg.cat_smooth,
        "min_data_per_group": cfg.min_data_per_group,
        "max_cat_threshold": cfg.max_cat_threshold,
        "num_threads": cfg.num_threads,
        "seed": cfg.seed,
        "deterministic": True,
        "force_col_wise": True,
        "verbosity": -1,
    }


def _dataset(
    frame: pl.DataFrame, dense: list[str], cats: list[str], reference=None, categorical=True
):
    frame = frame.sort("week", "customer_id", "article_id")
    sizes = group_sizes(frame)
    if sizes.max(initial=0) > MAX_QUERY_ROWS:
        raise ValueError(
            f"a customer has {sizes.max()} candidates; LightGBM allows {MAX_QUERY_ROWS} per query"
        )
    x = frame.select(pl.col([*dense, *cats]).cast(pl.Float32)).to_numpy()
    return lgb.Dataset(
        x,
        label=frame["label"].to_numpy(),
        group=sizes,
        feature_name=[*dense, *cats],
        categorical_feature=cats if categorical else [],
        reference=reference,
        free_raw_data=True,
    )


def train_lgbm(
    train: pl.DataFrame, valid: pl.DataFrame | None, cfg: LGBMConfig
) -> tuple[lgb.Booster, dict]:
    """The booster and what happened (rounds, validation MAP@12 by round, importance). `valid`
    is the most recent training week; with `learn_from_latest` the two swap roles."""
    refit = cfg.refit_on_all_weeks
    if cfg.learn_from_latest and valid is not None and valid.height:
        train, valid, refit = valid, train, False
    dense, cats = feature_columns(train.drop("week"))
    params = _params(cfg)
    dtrain = _dataset(train, dense, cats, categorical=cfg.categorical)
    info: dict = {"features": len(dense) + len(cats), "train_rows": train.height}
    if valid is not None and valid.height:
        dvalid = _dataset(valid, dense, cats, reference=dtrain, categorical=cfg.categorical)
        record: dict = {}
        booster = lgb.train(
            params,
            dtrain,
            num_boost_round=cfg.num_boost_round,
            valid_sets=[dvalid],
            valid_names=["valid"],
            callbacks=[
                lgb.early_stopping(cfg.early_stopping_rounds, verbose=False),
                lgb.record_evaluation(record),
            ],
        )
        best = booster.best_iteration or cfg.num_boost_round
        info |= {
            "best_iteration": best,
            "valid_map_at_12_candidates": float(record["valid"]["map@12"][best - 1]),
            "valid_rows": valid.height,
        }
        if refit:
            both = pl.concat([train, valid], how="diagonal_relaxed")
            full = _dataset(both, dense, cats, categorical=cfg.categorical)
            booster = lgb.train(params, full, num_boost_round=best)
            info["refit_rows"] = both.height
    else:
        booster = lgb.train(params, dtrain, num_boost_round=min(cfg.num_boost_round, 200))
        info["best_iteration"] = booster.current_iteration()
    info["importance_gain"] = dict(
        zip(booster.feature_name(), booster.feature_importance("gain").tolist(), strict=True)
    )
    return booster, info


def predict(booster: lgb.Booster, frame: pl.DataFrame, chunk: int = 2_000_000) -> np.ndarray:
    """Scores of every row by LightGBM itself, in chunks of rows."""
    names = booster.feature_name()
    out = [
        booster.predict(frame[s : s + chunk].select(pl.col(names).cast(pl.Float32)).to_numpy())
        for s in range(0, frame.height, chunk)
    ]
    return np.concatenate(out) if out else np.zeros(0)


class CompiledRanker:
    """A saved LightGBM model compiled to machine code for this CPU (lleaves): the scores of
    `predict` (the same trees, compared and summed in double precision; 1.1e-14 apart at most
    on 2M full-scale rows, no top 12 changed) in less than half its time; scoring every
    candidate was most of the prediction shards' time (benchmarks/lgbm-scoring.md,
    `python benchmarks/lgbm_scoring.py`). Each process compiles for its own CPU."""

    def __init__(self, model_file: Path | str, num_threads: int = LGBMConfig.num_threads):
        import lleaves

        model_file = Path(model_file)
        self.names = lgb.Booster(model_file=str(model_file)).feature_name()
        self.model = lleaves.Model(model_file=str(model_file))
        self.model.compile()
        self.num_threads = num_threads

    @classmethod
    def of(cls, booster: lgb.Booster, num_threads: int = LGBMConfig.num_threads):
        """The compiled form of a booster in memory (through a temporary model file)."""
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.txt"
            booster.save_model(str(path))
            return cls(path, num_threads)

    def __call__(self, frame: pl.DataFrame, chunk: int = 500_000) -> np.ndarray:
        """Scores of every row, in chunks of rows. Features are cast to float32 as LightGBM
        learnt them and widened (exactly) into one reused buffer of the float64 rows the model
        reads, so no chunk allocates its own."""
        buf = np.empty((min(chunk, frame.height), len(self.names)))
        out = []
        for s in range(0, frame.height, chunk):
            part = frame[s : s + chunk].select(pl.col(self.names).cast(pl.Float32))
            x = buf[: part.height]
            x[...] = part.to_numpy()
            out.append(self.model.predict(x, n_jobs=self.num_threads))
        return np.concatenate(out) if out else np.zeros(0)
