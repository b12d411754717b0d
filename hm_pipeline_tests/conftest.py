"""Shared fixtures: one tiny synthetic world per test session, copied where tests write."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hm_pipeline.synth.world import generate_world

TINY_SEED = 7


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny world's raw folder; read-only by convention (copy it to modify)."""
    raw = tmp_path_factory.mktemp("tiny") / "raw"
    generate_world("tiny", TINY_SEED, raw)
    return raw


@pytest.fixture
def data_dir(tmp_path: Path, tiny_world: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh $HM_DATA_DIR holding a copy of the tiny world in raw/."""
    shutil.copytree(tiny_world, tmp_path / "raw")
    monkeypatch.setenv("HM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv(
        "DAGSTER_HOME", ""
    )  # the CLI picks $HM_DATA_DIR/dagster_home; restored after
    return tmp_path


@pytest.fixture(scope="session")
def tiny_tables(tiny_world: Path) -> dict:
    """The tiny world's typed tables (through the pure ingest functions), in memory."""
    from hm_pipeline.ingest import Calendar, ingest_articles, ingest_customers, ingest_transactions
    from hm_pipeline.settings import CALENDAR_END, CALENDAR_START

    articles = ingest_articles(tiny_world / "articles.csv").table
    customers, ids = ingest_customers(tiny_world / "customers.csv")
    tx = ingest_transactions(
        tiny_world / "transactions_train.csv",
        ids,
        articles.select("article_id"),
        Calendar(CALENDAR_START, CALENDAR_END),
    )
    return {
        "articles": articles,
        "customers": customers.table,
        "customer_ids": ids,
        "transactions": tx.table.collect(),
    }


def run_dagster(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    """The `dagster` CLI of this environment, run from the repo root as users run it, on a
    fresh temporary instance (no DAGSTER_HOME) and the data folder `data_dir`."""
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"} | {
        "HM_DATA_DIR": str(data_dir)
    }
    return subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), *args],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="session")
def tiny_catalogue_embeddings(tiny_world: Path, tiny_tables: dict, tmp_path_factory) -> dict:
    """The tiny world's text, image and metadata embeddings (real models, small settings)."""
    from hm_pipeline.embeddings.image import ImageConfig, image_embeddings
    from hm_pipeline.embeddings.metadata import metadata_embeddings
    from hm_pipeline.embeddings.text import default_model_path, text_embeddings
    from hm_pipeline.ingest import image_manifest

    arts = tiny_tables["articles"]
    manifest = image_manifest(arts["article_id"], tiny_world)
    cache = tmp_path_factory.mktemp("text_cache")
    return {
        "text_embeddings": text_embeddings(arts, default_model_path(), cache)[0],
        "image_embeddings": image_embeddings(
            arts, manifest, tiny_world, ImageConfig(epochs=1, max_train_images=500)
        )[0],
        "metadata_embeddings": metadata_embeddings(arts),
    }


def embeddings_for(catalogue: dict, transactions, articles, week) -> dict:
    """The catalogue embeddings plus the week's co-purchase embedding from `transactions`."""
    from hm_pipeline.embeddings.copurchase import copurchase_embeddings

    return catalogue | {
        "copurchase_embeddings": copurchase_embeddings(transactions.lazy(), articles, week)
    }
