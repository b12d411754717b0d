"""The EDA report as a pure function on the tiny world."""

from __future__ import annotations

from pathlib import Path

from hm_pipeline.eda import write_report


def test_write_report(tiny_tables: dict, tmp_path: Path) -> None:
    tx = tiny_tables["transactions"].lazy()
    table, md = write_report(
        tx, tiny_tables["customers"].lazy(), tiny_tables["articles"].lazy(), tmp_path
    )
    figures = dict(table.iter_rows())
    assert int(figures["transactions"]) == tiny_tables["transactions"].height
    assert int(figures["customers"]) == tiny_tables["customers"].height
    best = tiny_tables["transactions"]["article_id"].value_counts().sort("count")["count"].max()
    assert int(figures["best seller: transactions"]) == best
    assert "most sold" in md and "least sold" in md
    assert md.count("data:image/png;base64,") == len(list(tmp_path.glob("*.png"))) >= 6
    summary = (tmp_path / "summary.md").read_text()
    assert "weekly_sales.png" in summary and "base64" not in summary
