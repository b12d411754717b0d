"""The lake's files: atomic parquet writes with a checksum beside each file, and their check.

A reader never sees a half-written file (write to a temporary file in the same folder, fsync,
rename), and a file changed after it was written (bit rot, a stray edit, a truncated copy) is
found by its checksum (`<file>.sha256`) instead of giving wrong rows or a crash inside polars.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

CHECKSUM_SUFFIX = ".sha256"


class LakeWriteError(OSError):
    """Writing a table into the lake failed (unwritable folder, full disk...)."""


class CorruptTableError(OSError):
    """A lake file does not match the checksum written with it, or is not readable parquet."""


def sha256(path: Path) -> str:
    """The file's SHA-256, read in blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 23):
            h.update(block)
    return h.hexdigest()


def checksum_path(path: Path) -> Path:
    """Where a lake file's checksum is kept."""
    return Path(path).with_name(Path(path).name + CHECKSUM_SUFFIX)


def _sweep_temporaries(path: Path) -> None:
    """Remove what an earlier, killed writer of the same file left behind."""
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)


@dataclass
class Chunked:
    """A table made chunk by chunk (frames of one schema), written as each chunk comes, so the
    whole table is never in memory. `schema` types an empty table; `metadata()` is asked once
    the chunks are written (statistics gathered while they were made)."""

    chunks: Iterable[pl.DataFrame]
    schema: pl.Schema | dict
    metadata: Callable[[], dict] = field(default=lambda: {})


def _write_chunks(table: Chunked, path: Path) -> None:
    writer = None
    try:
        for chunk in table.chunks:
            if chunk.height == 0:
                continue
            arrow = chunk.to_arrow()
            if writer is None:
                writer = pq.ParquetWriter(path, arrow.schema)
            writer.write_table(arrow)
        if writer is None:
            pl.DataFrame(schema=table.schema).write_parquet(path, statistics=True)
    finally:
        if writer is not None:
            writer.close()


def write_parquet_atomic(frame: pl.DataFrame | pl.LazyFrame | Chunked, path: Path) -> int:
    """Write `frame` to `path` through a temporary file in the same folder, then rename; its
    checksum goes beside it.

    A LazyFrame is streamed (sink) rather than collected, a Chunked table written chunk by
    chunk. Returns the number of rows written.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp_sum = path.with_name(f".{path.name}{CHECKSUM_SUFFIX}.{uuid.uuid4().hex}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _sweep_temporaries(path)
        if isinstance(frame, Chunked):
            _write_chunks(frame, tmp)
        elif isinstance(frame, pl.LazyFrame):
            frame.sink_parquet(tmp, statistics=True)
        else:
            frame.write_parquet(tmp, statistics=True)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        tmp_sum.write_text(sha256(tmp) + "\n")
        os.replace(tmp, path)
        os.replace(tmp_sum, checksum_path(path))
    except OSError as exc:
        _discard(tmp, tmp_sum)
        raise LakeWriteError(f"cannot write {path}: {exc.strerror or exc}") from exc
    except pl.exceptions.PolarsError as exc:
        _discard(tmp, tmp_sum)
        io = _OS_ERROR.search(str(exc))
        if io is None:  # a failing query, not the disk
            raise
        raise LakeWriteError(f"cannot write {path}: {io.group(1)}") from exc
    except BaseException:
        _discard(tmp, tmp_sum)
        raise
    return pq.read_metadata(path).num_rows


_OS_ERROR = re.compile(r"([A-Za-z][^:()]*?) \(os error \d+\)")


def _discard(*paths: Path) -> None:
    for p in paths:
        with contextlib.suppress(OSError):
            p.unlink(missing_ok=True)


def verify(path: Path) -> str | None:
    """Why a lake file cannot be trusted, or None when it matches its checksum. A file written
    before checksums were kept is only checked to be readable parquet."""
    path = Path(path)
    if not path.exists():
        return "missing"
    saved = checksum_path(path)
    if saved.exists():
        if sha256(path) != saved.read_text().strip():
            return "checksum mismatch: the file changed after it was written"
        return None
    try:
        pq.read_metadata(path)
    except Exception as exc:  # pyarrow raises several types for a damaged footer
        return f"not readable parquet: {exc}"
    return None


def check_readable(path: Path, what: str) -> None:
    """Raise CorruptTableError naming the file and the repair command when it is damaged."""
    problem = verify(path)
    if problem is not None and problem != "missing":
        raise CorruptTableError(
            f"{what}: {path} is damaged ({problem}); `hm-pipeline lake-check --repair` "
            "re-materializes it"
        )


@dataclass(frozen=True)
class Damaged:
    """A damaged lake file and the asset (partition) that writes it."""

    path: Path
    asset: str
    partition: str | None
    problem: str


def scan(lake: Path) -> list[Damaged]:
    """Every damaged parquet file under the lake (`<asset>.parquet` or
    `<asset>/<partition>.parquet`, the IO manager's layout)."""
    lake = Path(lake)
    found = []
    for path in sorted(lake.rglob("*.parquet")):
        if path.name.startswith("."):
            continue
        problem = verify(path)
        if problem is None:
            continue
        rel = path.relative_to(lake)
        if len(rel.parts) == 1:
            asset, partition = rel.stem, None
        else:
            asset, partition = "/".join(rel.parts[:-1]), rel.stem
        found.append(Damaged(path, asset, partition, problem))
    return found
