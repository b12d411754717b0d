"""The embedding table layout and the checks every embedding gets."""

from __future__ import annotations

import numpy as np
import polars as pl

# one row per catalogue article: the vector, and where it came from ("model", "fallback: ...")
EMBEDDING_COLUMNS = ("article_id", "embedding", "origin")


def normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms > 0, norms, 1)).astype(np.float32)


def to_table(article_ids: np.ndarray, vectors: np.ndarray, origin) -> pl.DataFrame:
    """The embedding table, sorted by article id."""
    origin = np.broadcast_to(np.asarray(origin, dtype=object), (len(article_ids),))
    return pl.DataFrame(
        {
            "article_id": pl.Series(article_ids, dtype=pl.Int32),
            "embedding": pl.Series(
                vectors.astype(np.float32), dtype=pl.Array(pl.Float32, vectors.shape[1])
            ),
            "origin": pl.Series(list(origin), dtype=pl.String),
        }
    ).sort("article_id")


def matrix(table: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(article ids, float32 matrix) of an embedding table."""
    return table["article_id"].to_numpy(), table["embedding"].to_numpy().astype(np.float32)


def fill_from_groups(
    vectors: np.ndarray, known: np.ndarray, groups: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Rows without a vector take the normalized mean of known rows sharing the first group
    key that has any (e.g. product code, then product type); the origin says which. Rows left
    take the mean of all known rows."""
    out = vectors.copy()
    origin = np.where(known, "model", "").astype(object)
    todo = ~known
    names = ["product_code", "product_type", "catalogue"]
    for name, key in zip(names, [*groups, np.zeros(len(vectors), np.int64)], strict=False):
        if not todo.any() or not known.any():
            break
        codes, inv = np.unique(key, return_inverse=True)
        sums = np.zeros((len(codes), vectors.shape[1]), np.float64)
        np.add.at(sums, inv[known], vectors[known])
        counts = np.bincount(inv[known], minlength=len(codes))
        can = todo & (counts[inv] > 0)
        out[can] = normalize(sums[inv[can]])
        origin[can] = f"fallback: mean of {name}"
        todo &= ~can
    return out, origin


def neighbour_agreement(
    table: pl.DataFrame, articles: pl.DataFrame, k: int = 5, sample: int = 2000, seed: int = 0
) -> dict[str, float]:
    """For a sample of articles: the share of their k nearest neighbours (cosine, excluding
    themselves) that share their product type, product code and colour group."""
    import torch

    ids, x = matrix(table)
    attrs = (
        pl.DataFrame({"article_id": ids.astype(np.int32)})
        .join(articles, on="article_id", how="left", maintain_order="left")
        .select("product_type_no", "product_code", "colour_group_code")
        .to_numpy()
    )
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(ids), min(sample, len(ids)), replace=False))
    xt = torch.from_numpy(x)
    sims = xt[rows] @ xt.T
    sims[torch.arange(len(rows)), torch.from_numpy(rows)] = -np.inf
    nn = torch.topk(sims, min(k, len(ids) - 1), dim=1).indices.numpy()
    out = {}
    for j, name in enumerate(["product_type", "product_code", "colour_group"]):
        out[f"nn{k}_same_{name}"] = float((attrs[nn, j] == attrs[rows, j][:, None]).mean())
        # what chance gives: the share among random pairs
        rand = rng.integers(0, len(ids), size=(len(rows), k))
        out[f"random_same_{name}"] = float((attrs[rand, j] == attrs[rows, j][:, None]).mean())
    return out


def check(table: pl.DataFrame, catalogue: pl.Series, unit_norm: bool) -> list[str]:
    """Problems with an embedding table: a missing or extra article, a non-finite value, a
    vector off unit norm where the source claims it. Empty when all is well."""
    problems = []
    ids = table["article_id"]
    if ids.n_unique() != ids.len():
        problems.append("duplicate article ids")
    missing = catalogue.filter(~catalogue.is_in(ids.implode()))
    if missing.len():
        problems.append(f"{missing.len()} catalogue articles have no row (e.g. {missing[0]})")
    extra = ids.filter(~ids.is_in(catalogue.implode()))
    if extra.len():
        problems.append(f"{extra.len()} rows for articles not in the catalogue")
    _, x = matrix(table)
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        problems.append(
            f"{int(bad.sum())} rows with non-finite values (e.g. {ids[int(np.argmax(bad))]})"
        )
    if unit_norm:
        off = np.abs(np.linalg.norm(x, axis=1) - 1) > 1e-3
        if off.any():
            problems.append(f"{int(off.sum())} rows are not unit norm")
    return problems
