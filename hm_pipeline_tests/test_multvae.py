"""Mult-VAE: it learns co-occurrence, it is seeded, top-k comes from the decoder."""

from __future__ import annotations

import numpy as np
import torch
from scipy import sparse

from hm_pipeline.models.multvae import MultVAEConfig, top_k, train_multvae


def _blocks(n_users: int = 200, seed: int = 0) -> sparse.csr_matrix:
    """Two tastes: users of group g buy 5 of the 10 items of block g."""
    rng = np.random.default_rng(seed)
    rows, cols = [], []
    for u in range(n_users):
        items = rng.choice(10, 5, replace=False) + 10 * (u % 2)
        rows += [u] * 5
        cols += items.tolist()
    return sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_users, 20))


def test_multvae_recommends_within_the_users_block() -> None:
    x = _blocks()
    cfg = MultVAEConfig(hidden=32, latent=8, epochs=40, batch_size=50, lr=5e-3, anneal_steps=200)
    model, losses = train_multvae(x, cfg)
    assert losses[-1] < losses[0]
    _, items = top_k(model, x, np.arange(200), k=5)
    same_block = (items // 10) == (np.arange(200) % 2)[:, None]
    assert same_block.mean() > 0.9


def test_same_seed_same_model() -> None:
    x = _blocks(60)
    cfg = MultVAEConfig(hidden=16, latent=4, epochs=2, batch_size=20, seed=3)
    a, _ = train_multvae(x, cfg)
    b, _ = train_multvae(x, cfg)
    assert all(
        torch.equal(p, q)
        for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )
