"""NeuMF pool scoring: `NeuMF.score_pool` (the first layer split into a user and a pool share)
against scoring every (user, article) pair through `forward`, at full-scale table sizes with
random weights: 50,000 users x a 1,000-article pool, top 200 per user in chunks of 1,024 as
`NeuMFSource.rank` does. Writes benchmarks/neumf-scoring.md.

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
                         ("score_pool", model.score_pool)):  # fmt: skip
            rows.append(f"| {rep} | {name} | {timed(fn, users, pool):.1f} |")
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
            ]
        )
    )
    print(out.read_text())


if __name__ == "__main__":
    main()
