"""Mult-VAE (Liang et al. 2018): a variational autoencoder over a customer's purchase vector
with a multinomial likelihood; the decoder's logits rank articles."""

from __future__ import annotations

import numpy as np
import torch
from scipy import sparse
from torch import nn
from torch.nn import functional as F

from hm_pipeline.models.common import pick_device, seeded_generator
from hm_pipeline.models.configs import MultVAEConfig


class MultVAE(nn.Module):
    """Encoder q(z|x) and decoder p(x|z) over n_items."""

    def __init__(self, n_items: int, cfg: MultVAEConfig):
        super().__init__()
        self.drop = nn.Dropout(cfg.dropout)
        self.enc = nn.Linear(n_items, cfg.hidden)
        self.mu = nn.Linear(cfg.hidden, cfg.latent)
        self.logvar = nn.Linear(cfg.hidden, cfg.latent)
        self.dec1 = nn.Linear(cfg.latent, cfg.hidden)
        self.dec2 = nn.Linear(cfg.hidden, n_items)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = F.normalize(x, dim=1)
        h = torch.tanh(self.enc(self.drop(h)))
        mu, logvar = self.mu(h), self.logvar(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return self.dec2(torch.tanh(self.dec1(z))), mu, logvar


def _dense(x: sparse.csr_matrix, rows: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(x[rows].todense(), dtype=np.float32))


def train_multvae(x: sparse.csr_matrix, cfg: MultVAEConfig) -> tuple[MultVAE, list[float]]:
    """Train on a (customers x items) 0/1 matrix; returns the model (CPU, eval) and the mean
    loss per epoch (negative multinomial log-likelihood + beta * KL)."""
    device = pick_device()
    gen = seeded_generator(cfg.seed)
    model = MultVAE(x.shape[1], cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    step, history = 0, []
    model.train()
    for _ in range(cfg.epochs):
        order = torch.randperm(x.shape[0], generator=gen).numpy()
        total = 0.0
        for s in range(0, len(order), cfg.batch_size):
            batch = _dense(x, order[s : s + cfg.batch_size]).to(device)
            logits, mu, logvar = model(batch)
            nll = -(F.log_softmax(logits, dim=1) * batch).sum(dim=1).mean()
            kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)).mean()
            beta = min(cfg.beta_max, cfg.beta_max * step / max(cfg.anneal_steps, 1))
            loss = nll + beta * kl
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            total += loss.item() * len(batch)
        history.append(total / max(x.shape[0], 1))
    return model.cpu().eval(), history


@torch.no_grad()
def top_k(model: MultVAE, x: sparse.csr_matrix, rows: np.ndarray, k: int, batch: int = 1024):
    """(scores, item indices) of the k best items for each of `rows`, in batches."""
    scores, items = [], []
    for s in range(0, len(rows), batch):
        logits, _, _ = model(_dense(x, rows[s : s + batch]))
        top = torch.topk(logits, min(k, logits.shape[1]), dim=1)
        scores.append(top.values.numpy())
        items.append(top.indices.numpy())
    if not scores:
        return np.zeros((0, k), np.float32), np.zeros((0, k), np.int64)
    return np.concatenate(scores), np.concatenate(items)
