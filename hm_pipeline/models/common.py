"""What every torch model shares: the device, seeding, id indexing, a model store. torch is
imported where it is used: the id index and the model store's folders are also read by steps
that load no model, and every step process imports this module."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

if TYPE_CHECKING:
    import torch


def pick_device() -> torch.device:
    """$HM_DEVICE when set (e.g. "cpu" to keep a GPU free), else CUDA when present, else the
    CPU."""
    import torch

    wanted = os.environ.get("HM_DEVICE")
    if wanted:
        return torch.device(wanted)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seeded_generator(seed: int) -> torch.Generator:
    """Seed torch's global state (weight init) and return a generator for shuffling."""
    import torch

    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


@dataclass(frozen=True)
class IdIndex:
    """Contiguous indices for the ids a model was trained on (sorted, so deterministic)."""

    ids: np.ndarray

    @classmethod
    def of(cls, values: pl.Series) -> IdIndex:
        """The index of the distinct values."""
        return cls(np.sort(values.unique().to_numpy()))

    def __len__(self) -> int:
        return len(self.ids)

    def lookup(self, values: np.ndarray) -> np.ndarray:
        """Index of each value, -1 where the model never saw it."""
        pos = np.searchsorted(self.ids, values)
        pos = np.minimum(pos, len(self.ids) - 1)
        return np.where(self.ids[pos] == values, pos, -1)


MODEL_FILES = ("model.pt", "config.json", "ids.npz")
POINTER = "trained_for.json"  # a week served by another week's model: which one


def save_model(folder: Path, model: torch.nn.Module, config: dict, **extra: np.ndarray) -> Path:
    """state_dict + config.json (+ id arrays) in `folder`; no pickled objects."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    (folder / POINTER).unlink(missing_ok=True)
    torch.save(model.state_dict(), folder / "model.pt")
    (folder / "config.json").write_text(json.dumps(config, indent=1, default=str))
    if extra:
        np.savez(folder / "ids.npz", **extra)
    return folder


def point_to(folder: Path, target: Path, week: str) -> Path:
    """Record in `folder` (a week's model folder) that the model trained for `week`, stored in
    `target`, served that week; model files of an earlier run there are removed."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in MODEL_FILES:
        (folder / name).unlink(missing_ok=True)
    (folder / POINTER).write_text(json.dumps({"week": week, "folder": str(target)}, indent=1))
    return folder


def resolve_model_folder(folder: Path) -> Path:
    """The folder holding the model files of `folder`'s week (following its pointer)."""
    folder = Path(folder)
    pointer = folder / POINTER
    if not (folder / "config.json").exists() and pointer.exists():
        return Path(json.loads(pointer.read_text())["folder"])
    return folder
