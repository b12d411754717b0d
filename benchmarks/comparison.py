"""The report of a before-and-now benchmark (union_chunks.py, similarity_scoring.py,
customer_similarity.py, recommendation_sources.py): a markdown file with a title, the line that
says which command wrote it and what it measured, and one table of timings; printed, and the
command fails when the two ways gave different results."""

from __future__ import annotations

from pathlib import Path


def write_comparison(
    path: Path, title: str, intro: str, columns: list[str], rows: list[str], same: bool, what: str
) -> None:
    """Write `path`, print it, and exit non-zero ("the <what> differ") unless `same`."""
    path.write_text(
        "\n".join(
            [
                f"# {title}",
                "",
                intro,
                "",
                "| " + " | ".join(columns) + " |",
                "|" + "---|" * len(columns),
                *rows,
                "",
            ]
        )
    )
    print(path.read_text())
    if not same:
        raise SystemExit(f"the {what} differ")
