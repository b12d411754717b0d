"""Atomic parquet writes: a reader never sees a half-written file."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq


class LakeWriteError(OSError):
    """Writing a table into the lake failed (unwritable folder, full disk...)."""


def write_parquet_atomic(frame: pl.DataFrame | pl.LazyFrame, path: Path) -> int:
    """Write `frame` to `path` through a temporary file in the same folder, then rename.

    A LazyFrame is streamed (sink) rather than collected. Returns the number of rows written.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(frame, pl.LazyFrame):
            frame.sink_parquet(tmp, statistics=True)
        else:
            frame.write_parquet(tmp, statistics=True)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise LakeWriteError(f"cannot write {path}: {exc.strerror or exc}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return pq.read_metadata(path).num_rows
