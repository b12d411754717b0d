"""Plots as PNG files, and their embedding in markdown (Dagster metadata has no image type)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    import matplotlib.pyplot as plt


def pyplot():
    """matplotlib's pyplot on the Agg backend, imported by the steps that draw (every step
    process imports this module)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def markdown_image(path: Path, alt: str) -> str:
    """A markdown image with the PNG inlined as base64, so it shows in the Dagster UI."""
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f"![{alt}](data:image/png;base64,{data})"


def save(fig: plt.Figure, path: Path) -> Path:
    """Save and close a figure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    pyplot().close(fig)
    return path


def map_by_week(by_week: pl.DataFrame, path: Path) -> Path:
    """MAP@12 by validation week, one line per method."""
    fig, ax = pyplot().subplots(figsize=(8, 4.5))
    for method in sorted(by_week["method"].unique()):
        rows = by_week.filter(pl.col("method") == method).sort("week")
        ax.plot([str(w) for w in rows["week"]], rows["map_at_12"], marker="o", label=method)
    ax.set_ylabel("MAP@12")
    ax.set_xlabel("validation week")
    ax.legend(fontsize=7, ncol=2)
    ax.tick_params(axis="x", rotation=30)
    return save(fig, path)


def feature_importance(gain: dict[str, float], path: Path, top: int = 30) -> Path:
    """The `top` features by total gain, as horizontal bars."""
    items = sorted(gain.items(), key=lambda kv: kv[1], reverse=True)[:top][::-1]
    fig, ax = pyplot().subplots(figsize=(7, max(3, 0.25 * len(items))))
    ax.barh([k for k, _ in items], [v for _, v in items])
    ax.set_xlabel("total gain")
    ax.tick_params(axis="y", labelsize=7)
    return save(fig, path)
