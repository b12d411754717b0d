"""NeuMF (He et al. 2017): a GMF branch and an MLP branch over user and item embeddings,
fused by a final linear layer, trained with binary cross-entropy on sampled negatives."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from hm_pipeline.models.common import pick_device, seeded_generator
from hm_pipeline.models.configs import NeuMFConfig


class NeuMF(nn.Module):
    """Logit of user u buying item i."""

    def __init__(self, n_users: int, n_items: int, cfg: NeuMFConfig):
        super().__init__()
        # sparse gradients: a step touches only the batch's rows of the (large) tables
        self.user_gmf = nn.Embedding(n_users, cfg.gmf_dim, sparse=True)
        self.item_gmf = nn.Embedding(n_items, cfg.gmf_dim, sparse=True)
        self.user_mlp = nn.Embedding(n_users, cfg.mlp_dim, sparse=True)
        self.item_mlp = nn.Embedding(n_items, cfg.mlp_dim, sparse=True)
        layers: list[nn.Module] = []
        width = 2 * cfg.mlp_dim
        for out in cfg.mlp_layers:
            layers += [nn.Linear(width, out), nn.ReLU()]
            width = out
        self.mlp = nn.Sequential(*layers)
        self.head = nn.Linear(cfg.gmf_dim + width, 1)
        for emb in (self.user_gmf, self.item_gmf, self.user_mlp, self.item_mlp):
            nn.init.normal_(emb.weight, std=0.01)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        gmf = self.user_gmf(users) * self.item_gmf(items)
        mlp = self.mlp(torch.cat([self.user_mlp(users), self.item_mlp(items)], dim=-1))
        return self.head(torch.cat([gmf, mlp], dim=-1)).squeeze(-1)

    @torch.no_grad()
    def score_pool(self, users: torch.Tensor, pool: torch.Tensor, batch: int = 32) -> torch.Tensor:
        """Logits of every user x every pool item, (len(users), len(pool)), in user batches.
        The MLP's first layer is linear in [user; item], so each side's share is computed once
        (users per batch, the pool once) and only their sum goes through the rest of the MLP;
        the GMF term and the head are folded into one user x item product. Small batches keep
        the (batch x pool x width) activations in the CPU's cache, and the ReLUs work in place:
        the same logits in about half the time of batches of 256 (benchmarks/neumf-scoring.md)."""
        if len(users) == 0:
            return torch.zeros((0, len(pool)))
        g, d = self.user_gmf.embedding_dim, self.user_mlp.embedding_dim
        head_w, head_b = self.head.weight[0], self.head.bias[0]
        if len(self.mlp):
            first, rest = self.mlp[0], self.mlp[1:]
            user_w, item_w, bias = first.weight[:, :d].T, first.weight[:, d:].T, first.bias
        else:  # no hidden layer: the tower is the concatenation [user; item] itself
            eye = torch.eye(2 * d)
            user_w, item_w, bias, rest = eye[:d], eye[d:], torch.zeros(2 * d), nn.Sequential()
        item_gmf = self.item_gmf(pool)  # (P, g)
        item_first = self.item_mlp(pool) @ item_w + bias  # (P, h1)
        out = []
        for s in range(0, len(users), batch):
            u = users[s : s + batch]
            gmf = (self.user_gmf(u) * head_w[:g]) @ item_gmf.T  # (B, P)
            hidden = (self.user_mlp(u) @ user_w)[:, None, :] + item_first[None, :, :]
            for layer in rest:
                hidden = hidden.relu_() if isinstance(layer, nn.ReLU) else layer(hidden)
            out.append(gmf + hidden @ head_w[g:] + head_b)
        return torch.cat(out)


def train_neumf(
    users: np.ndarray,
    items: np.ndarray,
    labels: np.ndarray,
    n_users: int,
    n_items: int,
    cfg: NeuMFConfig,
) -> tuple[NeuMF, list[float]]:
    """Train on (user index, item index, 0/1 label) rows; returns the model (on the CPU, in eval
    mode) and the mean loss of each epoch."""
    device = pick_device()
    gen = seeded_generator(cfg.seed)
    model = NeuMF(n_users, n_items, cfg).to(device)
    embeddings = [p for n, p in model.named_parameters() if n.startswith(("user_", "item_"))]
    dense = [p for n, p in model.named_parameters() if not n.startswith(("user_", "item_"))]
    opts = [
        torch.optim.SparseAdam(embeddings, lr=cfg.lr),
        torch.optim.Adam(dense, lr=cfg.lr, weight_decay=cfg.weight_decay),
    ]
    loss_fn = nn.BCEWithLogitsLoss()
    u = torch.tensor(np.asarray(users), dtype=torch.long)
    i = torch.tensor(np.asarray(items), dtype=torch.long)
    y = torch.tensor(np.asarray(labels), dtype=torch.float32)
    history = []
    model.train()
    for _ in range(cfg.epochs):
        order = torch.randperm(len(y), generator=gen)
        total = 0.0
        for s in range(0, len(order), cfg.batch_size):
            idx = order[s : s + cfg.batch_size]
            logits = model(u[idx].to(device), i[idx].to(device))
            loss = loss_fn(logits, y[idx].to(device))
            for opt in opts:
                opt.zero_grad()
            loss.backward()
            for opt in opts:
                opt.step()
            total += loss.item() * len(idx)
        history.append(total / max(len(y), 1))
    return model.cpu().eval(), history
