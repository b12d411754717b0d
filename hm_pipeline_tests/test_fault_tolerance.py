"""Fault tolerance: killed writers, re-materialization, concurrent weeks, damaged lake files,
unwritable and full data folders. Each test breaks something real and checks what is left."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from hm_pipeline.definitions import all_assets, all_checks
from hm_pipeline.lake import (
    CorruptTableError,
    LakeWriteError,
    checksum_path,
    scan,
    write_parquet_atomic,
)
from hm_pipeline_tests.conftest import run_dagster
from hm_pipeline_tests.test_assets import _materialize, _resources

WEEK = "2020-09-16"
WEEK_ASSETS = [
    "week_split",
    "labels",
    "customers_to_score",
    "customer_features",
    "candidates_repurchase",
]
CLI = str(Path(sys.executable).parent / "hm-pipeline")

WRITER = """
import sys
import polars as pl
from hm_pipeline.lake import write_parquet_atomic
n = int(sys.argv[2])
frame = pl.LazyFrame().select(pl.int_range(0, n, dtype=pl.Int64).alias("i")).with_columns(
    (pl.col("i").hash(7) % 1000003).alias("h"), (pl.col("i") * 0.5).alias("x")
)
write_parquet_atomic(frame, sys.argv[1])
"""


def _small_frame(n: int) -> pl.LazyFrame:
    return pl.LazyFrame().select(pl.int_range(0, n, dtype=pl.Int64).alias("i"))


def _lake_files(lake: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(lake)): p.read_bytes()
        for p in sorted(lake.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


def test_a_killed_writer_leaves_the_old_file_and_a_rerun_completes(tmp_path: Path) -> None:
    target = tmp_path / "lake" / "table.parquet"
    write_parquet_atomic(_small_frame(10).collect(), target)
    before = target.read_bytes()
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target), str(400_000_000)])
    try:
        deadline = time.monotonic() + 60
        while not list(target.parent.glob(".table.parquet.*.tmp")):
            assert proc.poll() is None, "the writer ended before it was killed"
            assert time.monotonic() < deadline, "the writer never started writing"
            time.sleep(0.02)
        time.sleep(0.3)  # well inside the write
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert target.read_bytes() == before  # readers still see the complete old table
    assert scan(target.parent) == []  # and it still matches its checksum
    assert list(target.parent.glob(".*.tmp"))  # what the killed writer left, hidden
    # a rerun completes, sweeps the leftovers and writes what an undisturbed write writes
    small = [sys.executable, "-c", WRITER]
    subprocess.run([*small, str(target), "2000000"], check=True)
    subprocess.run([*small, str(tmp_path / "clean.parquet"), "2000000"], check=True)
    assert target.read_bytes() == (tmp_path / "clean.parquet").read_bytes()
    assert not list(target.parent.glob(".*.tmp"))


def _materialize_week(data: Path, instance: dg.DagsterInstance) -> None:
    assert _materialize(data).success  # the raw tables
    week = dg.materialize(
        [*all_assets, *all_checks],
        resources=_resources(data),
        selection=dg.AssetSelection.assets(*WEEK_ASSETS),
        partition_key=WEEK,
        instance=instance,
    )
    assert week.success


@pytest.fixture
def materialized(data_dir: Path) -> Path:
    """The tiny world's raw tables and one week's split, labels, features and candidates."""
    _materialize_week(data_dir, dg.DagsterInstance.ephemeral())
    return data_dir


def test_rematerializing_gives_byte_identical_parquet(materialized: Path) -> None:
    lake = materialized / "lake"
    first = _lake_files(lake)
    assert f"customer_features/{WEEK}.parquet" in first
    assert f"transactions.parquet{'.sha256'}" in first
    _materialize_week(materialized, dg.DagsterInstance.ephemeral())
    second = _lake_files(lake)
    assert second.keys() == first.keys()
    differ = [k for k in first if first[k] != second[k]]
    assert differ == []


def test_two_weeks_materialized_concurrently_do_not_clash(
    materialized: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    other = "2020-09-09"
    select = ",".join(WEEK_ASSETS)
    # sequential reference in a second data folder
    ref = tmp_path_factory.mktemp("ref")
    shutil.copytree(materialized / "raw", ref / "raw")
    shutil.copytree(materialized / "lake", ref / "lake")
    for w in (other, WEEK):
        out = run_dagster(
            "asset", "materialize", "-m", "hm_pipeline.definitions", "--select", select,
            "--partition", w, data_dir=ref,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr[-3000:]
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env["HM_DATA_DIR"] = str(materialized)
    dagster = str(Path(sys.executable).parent / "dagster")
    procs = [
        subprocess.Popen(
            [
                dagster,
                "asset",
                "materialize",
                "-m",
                "hm_pipeline.definitions",
                "--select",
                select,
                "--partition",
                w,
            ],
            cwd=Path(__file__).resolve().parents[1],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for w in (WEEK, other)
    ]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
    got, want = _lake_files(materialized / "lake"), _lake_files(ref / "lake")
    assert got.keys() == want.keys()
    assert [k for k in want if got[k] != want[k]] == []
    assert not list((materialized / "lake").rglob(".*.tmp"))


def test_a_damaged_lake_file_is_found_and_regenerated(materialized: Path) -> None:
    from hm_pipeline.io_manager import ParquetIOManager

    target = materialized / "lake" / "customer_features" / f"{WEEK}.parquet"
    good = target.read_bytes()
    damaged = bytearray(good)
    middle = len(damaged) // 2
    damaged[middle : middle + 64] = bytes(64)  # a run of zeros inside the data pages
    target.write_bytes(bytes(damaged))
    found = scan(materialized / "lake")
    assert [(d.asset, d.partition) for d in found] == [("customer_features", WEEK)]
    # a reader gets an error naming the file and the repair, not a wrong table
    io = ParquetIOManager(base_dir=str(materialized / "lake"))
    from dagster._core.types.dagster_type import resolve_dagster_type

    ctx = dg.build_input_context(
        asset_key=dg.AssetKey("customer_features"),
        partition_key=WEEK,
        asset_partitions_def=dg.StaticPartitionsDefinition([WEEK]),
        dagster_type=resolve_dagster_type(pl.LazyFrame),
    )
    with pytest.raises(CorruptTableError, match=r"customer_features.*lake-check --repair"):
        io.load_input(ctx)
    env = os.environ | {"HM_DATA_DIR": str(materialized), "DAGSTER_HOME": ""}
    check = subprocess.run(
        [CLI, "lake-check"], env=env, capture_output=True, text=True, check=False
    )
    assert check.returncode == 1
    assert f"DAMAGED customer_features [{WEEK}]" in check.stdout
    repair = subprocess.run(
        [CLI, "lake-check", "--repair"], env=env, capture_output=True, text=True, check=False
    )
    assert repair.returncode == 0, repair.stdout[-2000:] + repair.stderr[-2000:]
    assert target.read_bytes() == good
    assert scan(materialized / "lake") == []


def test_an_unwritable_data_folder_is_one_clear_line(tmp_path: Path) -> None:
    # /proc refuses new folders even to root; a plain file where the folder should be too
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for folder in ("/proc/hm-data", str(blocker / "data")):
        env = os.environ | {"HM_DATA_DIR": folder, "DAGSTER_HOME": ""}
        out = subprocess.run(
            [CLI, "run", "--week", WEEK], env=env, capture_output=True, text=True, check=False
        )
        assert out.returncode != 0
        assert f"the data folder {folder} is not writable" in out.stderr
        assert "Traceback" not in out.stderr + out.stdout


@pytest.fixture
def full_lake(data_dir: Path):
    """The data folder with its lake on a 256 KiB file system: full after the first tables."""
    lake = data_dir / "lake"
    lake.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(lake)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        if os.environ.get("HM_REQUIRE_SYSTEM_TESTS"):
            pytest.fail(f"cannot mount a small file system: {mounted.stderr.decode()}")
        pytest.skip("mounting a small file system needs root")
    try:
        yield data_dir
    finally:
        subprocess.run(["umount", "-l", str(lake)], check=False)


def test_a_full_disk_is_a_clear_error(full_lake: Path) -> None:
    lake = full_lake / "lake"
    with pytest.raises(LakeWriteError, match="No space left on device"):
        write_parquet_atomic(_small_frame(2_000_000).collect(), lake / "big.parquet")
    assert not list(lake.glob(".*"))  # nothing half-written left behind
    assert not (lake / "big.parquet").exists()
    env = os.environ | {"HM_DATA_DIR": str(full_lake), "DAGSTER_HOME": ""}
    out = subprocess.run(
        [CLI, "run", "--week", WEEK], env=env, capture_output=True, text=True, check=False
    )
    assert out.returncode == 1
    text = out.stdout + out.stderr
    assert "No space left on device" in text
    assert f"cannot write {lake}" in text
    assert "Traceback" not in text
    assert not checksum_path(lake / "transactions.parquet").exists()
