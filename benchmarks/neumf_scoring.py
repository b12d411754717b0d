"""NeuMF pool scoring: `NeuMF.score_pool` (the first layer split into a user and a pool share)
against scoring every (user, article) pair through `forward`, at full-scale table sizes with
random weights: 50,000 users x a 1,000-article pool, top 200 per user in chunks of 1,024 as
`NeuMFSource.rank` does; and `score_pool` as it was before (batches of 256 users, ReLUs making
new tensors), with the largest difference between its logits and today's. Writes
benchmarks/neumf-scoring.md.

    python benchmarks/neumf_scoring.py
"""

from __future__ import annotations

import platform
import time
from pathlib import Path

import torch

from hm_pipeline.models.neumf import NeuMF, NeuMFConfig

N_USERS, N_ITEMS, USERS, POOL, K = 600_000, 30_000, 50_000, 1_000, 200


def pairwise(model: NeuMF, users: torch.Tensor, pool: torch.Tensor, batch: int = 256):
    """The reference: every pair through forward."""
    with torch.no_grad():
        return torch.cat(
            [
                model(u.repeat_interleave(len(pool)), pool.repeat(len(u))).view(len(u), len(pool))
                for u in users.split(batch)
            ]
        )


@torch.no_grad()
def score_pool_before(model: NeuMF, users: torch.Tensor, pool: torch.Tensor, batch: int = 256):
    """score_pool as it was: batches of 256 users, the MLP's rest applied as a Sequential."""
    g, d = model.user_gmf.embedding_dim, model.user_mlp.embedding_dim
    head_w, head_b = model.head.weight[0], model.head.bias[0]
    first, rest = model.mlp[0], model.mlp[1:]
    user_w, item_w, bias = first.weight[:, :d].T, first.weight[:, d:].T, first.bias
    item_gmf = model.item_gmf(pool)
    item_first = model.item_mlp(pool) @ item_w + bias
    out = []
    for s in range(0, len(users), batch):
        u = users[s : s + batch]
        gmf = (model.user_gmf(u) * head_w[:g]) @ item_gmf.T
        hidden = rest((model.user_mlp(u) @ user_w)[:, None, :] + item_first[None, :, :])
        out.append(gmf + hidden @ head_w[g:] + head_b)
    return torch.cat(out)


def timed(score, users, pool) -> float:
    t = time.perf_counter()
    for chunk in users.split(1024):
        torch.topk(score(chunk, pool), K, dim=1)
    return time.perf_counter() - t


def main() -> None:
    torch.manual_seed(0)
    model = NeuMF(N_USERS, N_ITEMS, NeuMFConfig())
    users = torch.randint(0, N_USERS, (USERS,))
    pool = torch.randint(0, N_ITEMS, (POOL,))
    rows = []
    for rep in (1, 2):
        for name, fn in (("pairwise forward", lambda u, p: pairwise(model, u, p)),
                         ("score_pool before (batches of 256)",
                          lambda u, p: score_pool_before(model, u, p)),
                         ("score_pool", model.score_pool)):  # fmt: skip
            rows.append(f"| {rep} | {name} | {timed(fn, users, pool):.1f} |")
    diff = max(
        (model.score_pool(u, pool) - score_pool_before(model, u, pool)).abs().max().item()
        for u in users.split(1024)
    )
    out = Path(__file__).with_name("neumf-scoring.md")
    out.write_text(
        "\n".join(
            [
                "# NeuMF pool scoring",
                "",
                f"Written by `python benchmarks/neumf_scoring.py` ({platform.machine()}, "
                f"torch threads {torch.get_num_threads()}): {USERS:,} users x {POOL:,} "
                f"articles, top {K}, random weights at {N_USERS:,} users / {N_ITEMS:,} items.",
                "",
                "| repeat | scoring | wall s |",
                "|---|---|---|",
                *rows,
                "",
                f"Largest difference between score_pool's logits and the earlier batches of 256: "
                f"{diff:g}.",
                "",
            ]
        )
    )
    print(out.read_text())


if __name__ == "__main__":
    main()
