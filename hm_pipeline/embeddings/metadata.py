"""Metadata embeddings: the catalogue's categorical attributes, one-hot with idf weights,
factorized by a truncated eigen-decomposition of the (small) attribute Gram matrix."""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy import sparse

from hm_pipeline.embeddings.common import normalize, to_table

METADATA_ATTRIBUTES = (
    "product_type_no",
    "product_group_name",
    "graphical_appearance_no",
    "colour_group_code",
    "perceived_colour_value_id",
    "perceived_colour_master_id",
    "department_no",
    "index_code",
    "index_group_no",
    "section_no",
    "garment_group_no",
)


def one_hot(articles: pl.DataFrame, attributes=METADATA_ATTRIBUTES) -> sparse.csr_matrix:
    """Articles x attribute values, each column weighted by its idf (rare values count more)."""
    arts = articles.sort("article_id")
    blocks = []
    for name in attributes:
        codes = arts[name].cast(pl.String).fill_null("<null>").rank("dense").cast(pl.Int64)
        c = codes.to_numpy() - 1
        m = sparse.csr_matrix(
            (np.ones(len(c), np.float32), (np.arange(len(c)), c)), shape=(len(c), c.max() + 1)
        )
        idf = np.log(len(c) / np.asarray(m.sum(axis=0)).ravel())
        blocks.append(m @ sparse.diags(idf.astype(np.float32)))
    return sparse.hstack(blocks).tocsr()


def metadata_embeddings(articles: pl.DataFrame, dim: int = 32) -> pl.DataFrame:
    """Unit-norm vectors from the top `dim` eigenvectors of X^T X (deterministic: a dense
    symmetric eigen-decomposition, signs fixed so each eigenvector's largest entry is positive)."""
    x = one_hot(articles)
    gram = (x.T @ x).toarray().astype(np.float64)
    vals, vecs = np.linalg.eigh(gram)
    order = np.argsort(vals)[::-1][: min(dim, len(vals))]
    vecs = vecs[:, order]
    vecs *= np.sign(vecs[np.abs(vecs).argmax(axis=0), np.arange(vecs.shape[1])])
    emb = normalize(np.asarray(x @ vecs))
    ids = articles.sort("article_id")["article_id"].to_numpy()
    return to_table(ids, emb, "model")
