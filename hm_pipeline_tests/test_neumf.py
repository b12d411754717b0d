"""NeuMF: it learns, it is seeded, and its weights go to the model store, not the IO manager."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hm_pipeline.models.common import IdIndex, save_model
from hm_pipeline.models.neumf import NeuMF, NeuMFConfig, train_neumf


def _toy(seed: int = 0):
    """Users 0..49 like items of their own half of 40 items; negatives are the other half."""
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(50), 20)
    liked_half = users % 2
    items = rng.integers(0, 20, len(users)) + 20 * np.where(
        rng.random(len(users)) < 0.5, liked_half, 1 - liked_half
    )
    labels = (items // 20 == liked_half).astype(np.float32)
    return users, items, labels


def test_neumf_learns_a_preference() -> None:
    users, items, labels = _toy()
    model, losses = train_neumf(
        users, items, labels, 50, 40, NeuMFConfig(epochs=30, batch_size=256, lr=1e-2)
    )
    assert losses[-1] < 0.5 * losses[0]
    with torch.no_grad():
        scores = model(torch.as_tensor(users), torch.as_tensor(items)).numpy()
    pos, neg = scores[labels == 1], scores[labels == 0]
    auc = (pos[:, None] > neg[None, :]).mean()
    assert auc > 0.9


def test_same_seed_same_model() -> None:
    users, items, labels = _toy()
    cfg = NeuMFConfig(epochs=2, batch_size=256, seed=5)
    a, _ = train_neumf(users, items, labels, 50, 40, cfg)
    b, _ = train_neumf(users, items, labels, 50, 40, cfg)
    assert all(
        torch.equal(x, y)
        for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


@pytest.mark.parametrize("layers", [(64, 32, 16), (8,), ()])
def test_pool_scoring_matches_pairwise_scoring(layers: tuple[int, ...]) -> None:
    """score_pool splits the first MLP layer into a user and an item share and folds the GMF
    term into the head; every parameter is drawn at scale 1 so that a wrong split (a swapped
    half, a missing bias or ReLU) moves the scores and their order."""
    torch.manual_seed(0)
    model = NeuMF(9, 11, NeuMFConfig(mlp_layers=layers))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_()
    users, pool = torch.arange(9), torch.tensor([6, 2, 3, 10, 0])
    grid = model.score_pool(users, pool, batch=2)
    with torch.no_grad():
        direct = model(users.repeat_interleave(5), pool.repeat(9)).view(9, 5)
    assert grid.std() > 1.0  # the scores differ, so equality below is not about constants
    assert torch.allclose(grid, direct, rtol=1e-4, atol=1e-4)
    assert torch.equal(grid.argsort(dim=1), direct.argsort(dim=1))
    assert model.score_pool(users[:0], pool).shape == (0, 5)


def test_state_dict_round_trips_through_the_store(tmp_path: Path) -> None:
    cfg = NeuMFConfig()
    model = NeuMF(4, 6, cfg)
    folder = save_model(
        tmp_path / "neumf" / "2020-09-16",
        model,
        {"neumf": cfg.to_dict()},
        users=np.arange(4),
        items=np.arange(6),
    )
    again = NeuMF(4, 6, cfg)
    again.load_state_dict(torch.load(folder / "model.pt", weights_only=True))
    assert all(
        torch.equal(x, y)
        for x, y in zip(model.state_dict().values(), again.state_dict().values(), strict=True)
    )
    assert (folder / "config.json").exists() and np.load(folder / "ids.npz")[
        "items"
    ].tolist() == list(range(6))


def test_id_index_flags_unknown_ids() -> None:
    idx = IdIndex(np.array([3, 7, 9]))
    assert idx.lookup(np.array([7, 3, 8, 100])).tolist() == [1, 0, -1, -1]
