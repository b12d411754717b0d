"""DLRM (Naumov et al. 2019) over the same feature table: dense features through a bottom
MLP, every categorical input through an embedding of the same dimension, pairwise dot
interactions of all those vectors, and a top MLP over the interactions and the dense vector.
Trained pointwise (binary cross-entropy) with early stopping on the validation week's MAP@12
over the candidates."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl
import torch
from torch import nn

from hm_pipeline.arrays import positions
from hm_pipeline.metrics import map_at_k
from hm_pipeline.models.common import pick_device, save_model, seeded_generator
from hm_pipeline.ranking.features import feature_columns
from hm_pipeline.ranking.training import ranked


@dataclass(frozen=True)
class DLRMConfig:
    """Sizes and training knobs."""

    dim: int = 16
    bottom: tuple[int, ...] = (128, 64)
    top: tuple[int, ...] = (128, 64)
    epochs: int = 3
    batch_size: int = 2048
    lr: float = 2e-3
    weight_decay: float = 1e-6
    seed: int = 0

    def to_dict(self) -> dict:
        """A JSON-friendly dict."""
        return asdict(self)


@dataclass
class Preprocessor:
    """Dense: signed log1p, standardized with the training rows' mean and std, nulls 0 plus a
    null indicator per column that has nulls. Categoricals: the training rows' values as
    indices 1..n, 0 for unseen or null."""

    dense: list[str]
    cats: list[str]
    mean: np.ndarray
    std: np.ndarray
    vocab: list[np.ndarray]

    @classmethod
    def fit(cls, frame: pl.DataFrame) -> Preprocessor:
        dense, cats = feature_columns(frame.drop("week", strict=False))
        x = _signed_log(frame.select(pl.col(dense).cast(pl.Float64)).to_numpy())
        mean = np.nan_to_num(np.nanmean(x, axis=0))
        std = np.nan_to_num(np.nanstd(x, axis=0))
        vocab = [np.sort(frame[c].drop_nulls().unique().to_numpy()) for c in cats]
        return cls(dense, cats, mean, np.where(std > 0, std, 1.0), vocab)

    def dense_matrix(self, frame: pl.DataFrame) -> np.ndarray:
        """Standardized signed-log values (nulls 0) and the null indicators, float32; in polars,
        column by column on every core."""
        exprs = []
        for j, c in enumerate(self.dense):
            x = pl.col(c).cast(pl.Float64).fill_nan(None)
            z = (x.sign() * x.abs().log1p() - self.mean[j]) / self.std[j]
            exprs.append(z.fill_null(0.0).cast(pl.Float32).alias(f"z{j}"))
        exprs += [
            pl.col(c).cast(pl.Float64).fill_nan(None).is_null().cast(pl.Float32).alias(f"m{j}")
            for j, c in enumerate(self.dense)
        ]
        return frame.select(exprs).to_numpy()

    def cat_matrix(self, frame: pl.DataFrame) -> np.ndarray:
        cols = []
        for c, voc in zip(self.cats, self.vocab, strict=True):
            v = frame[c].fill_null(-(2**31)).to_numpy()
            pos, hit = positions(voc, v)
            cols.append(np.where(hit, pos + 1, 0))
        return np.stack(cols, axis=1).astype(np.int64) if cols else np.zeros((frame.height, 0))


def _signed_log(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers)


class DLRM(nn.Module):
    """Logit of a (customer, article) candidate being bought."""

    def __init__(self, n_dense: int, cardinalities: list[int], cfg: DLRMConfig):
        super().__init__()
        self.bottom = _mlp([n_dense, *cfg.bottom, cfg.dim])
        self.embeddings = nn.ModuleList(nn.Embedding(c, cfg.dim) for c in cardinalities)
        n = 1 + len(cardinalities)
        self.pairs = torch.triu_indices(n, n, offset=1)
        self.top = nn.Sequential(
            _mlp([cfg.dim + n * (n - 1) // 2, *cfg.top]), nn.Linear(cfg.top[-1], 1)
        )
        for emb in self.embeddings:
            nn.init.normal_(emb.weight, std=0.05)

    def forward(self, dense: torch.Tensor, cats: torch.Tensor) -> torch.Tensor:
        d = self.bottom(dense)
        vecs = torch.stack([d, *[e(cats[:, j]) for j, e in enumerate(self.embeddings)]], dim=1)
        inter = torch.bmm(vecs, vecs.transpose(1, 2))[:, self.pairs[0], self.pairs[1]]
        return self.top(torch.cat([d, inter], dim=1)).squeeze(1)


@torch.inference_mode()
def predict(
    model: DLRM, prep: Preprocessor, frame: pl.DataFrame, chunk: int = 262_144, batch: int = 16_384
):
    """Scores of every row: the inputs prepared `chunk` rows at a time, the model run on
    `batch` rows at a time, so its activations stay in the CPU's cache (2M rows: 10.1-10.6 s
    at 16,384 rows per call, 13.6-16.0 s at 262,144; benchmarks/dlrm-scoring.md)."""
    model.eval()
    out = []
    for s in range(0, frame.height, chunk):
        part = frame[s : s + chunk]
        dense = torch.from_numpy(prep.dense_matrix(part))
        cats = torch.from_numpy(prep.cat_matrix(part))
        out += [
            model(dense[b : b + batch], cats[b : b + batch]).numpy()
            for b in range(0, part.height, batch)
        ]
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def _valid_map(model, prep, valid: pl.DataFrame) -> float:
    top = ranked(valid, predict(model, prep, valid), 12)
    return map_at_k(top, valid.filter(pl.col("label") == 1).select("customer_id", "article_id"), 12)


def train_dlrm(
    train: pl.DataFrame, valid: pl.DataFrame | None, cfg: DLRMConfig
) -> tuple[DLRM, Preprocessor, dict]:
    """Train; with a validation week, keep the epoch with the best validation MAP@12."""
    device = pick_device()
    gen = seeded_generator(cfg.seed)
    prep = Preprocessor.fit(train)
    xd = torch.from_numpy(prep.dense_matrix(train))
    xc = torch.from_numpy(prep.cat_matrix(train))
    y = torch.from_numpy(train["label"].to_numpy().astype(np.float32))
    model = DLRM(xd.shape[1], [len(v) + 1 for v in prep.vocab], cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_fn = nn.BCEWithLogitsLoss()
    info: dict = {"losses": [], "valid_map_at_12_candidates": [], "train_rows": train.height}
    best_state, best_map = None, -1.0
    for _ in range(cfg.epochs):
        model.train()
        order = torch.randperm(len(y), generator=gen)
        total = 0.0
        for s in range(0, len(order), cfg.batch_size):
            idx = order[s : s + cfg.batch_size]
            logits = model(xd[idx].to(device), xc[idx].to(device))
            loss = loss_fn(logits, y[idx].to(device))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        info["losses"].append(total / max(len(y), 1))
        if valid is not None and valid.height:
            model.cpu()
            score = _valid_map(model, prep, valid)
            model.to(device)
            info["valid_map_at_12_candidates"].append(score)
            if score > best_map:
                best_map = score
                best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    model = model.cpu().eval()
    if best_state is not None:
        model.load_state_dict(best_state)
        info["best_epoch"] = int(np.argmax(info["valid_map_at_12_candidates"])) + 1
    return model, prep, info


def save_dlrm(folder: Path, model: DLRM, prep: Preprocessor, cfg: DLRMConfig, info: dict) -> Path:
    """state_dict, config.json (config, feature names, training info) and the
    standardization and vocabularies in ids.npz: what load_dlrm needs, nothing pickled."""
    return save_model(
        folder,
        model,
        {"config": cfg.to_dict(), "dense": prep.dense, "cats": prep.cats, **info},
        mean=prep.mean,
        std=prep.std,
        **{f"vocab_{c}": v for c, v in zip(prep.cats, prep.vocab, strict=True)},
    )


def load_dlrm(folder: Path) -> tuple[DLRM, Preprocessor]:
    """The model and preprocessing saved by ranker_models (state_dict, config.json, and the
    standardization and vocabularies in ids.npz)."""
    folder = Path(folder)
    info = json.loads((folder / "config.json").read_text())
    cfg = DLRMConfig(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in info["config"].items()}
    )
    arrays = np.load(folder / "ids.npz")
    prep = Preprocessor(
        list(info["dense"]),
        list(info["cats"]),
        arrays["mean"],
        arrays["std"],
        [arrays[f"vocab_{c}"] for c in info["cats"]],
    )
    model = DLRM(2 * len(prep.dense), [len(v) + 1 for v in prep.vocab], cfg)
    model.load_state_dict(torch.load(folder / "model.pt", weights_only=True))
    model.eval()
    return model, prep
