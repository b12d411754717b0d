"""What every step process pays before its work: importing the definitions. For each checkout
given (default: this one), three fresh `python -c 'import hm_pipeline.definitions'` runs with
that checkout first on the path, their wall times, and which model libraries the import loaded.
Writes benchmarks/startup.md.

    python benchmarks/startup.py [CHECKOUT ...]   # e.g. . and a `git worktree` of an older commit
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY = ["torch", "lightgbm", "sklearn", "matplotlib", "timm", "sentence_transformers"]
CODE = (
    "import sys, hm_pipeline.definitions; "
    f"print(','.join(m for m in {HEAVY!r} if m in sys.modules) or '-')"
)


def measure(checkout: Path, runs: int = 3) -> tuple[str, list[float], str]:
    commit = subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    with tempfile.TemporaryDirectory() as data:
        env = os.environ | {"PYTHONPATH": str(checkout.resolve()), "HM_DATA_DIR": data}
        walls, loaded = [], ""
        for _ in range(runs):
            t = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-c", CODE], cwd=data, env=env, capture_output=True, text=True,
                check=True,
            )  # fmt: skip
            walls.append(time.perf_counter() - t)
            loaded = out.stdout.strip()
    return commit, walls, loaded


def main() -> None:
    checkouts = [Path(a) for a in sys.argv[1:]] or [Path(__file__).resolve().parents[1]]
    rows = []
    for checkout in checkouts:
        commit, walls, loaded = measure(checkout)
        rows.append(f"| {commit} | {' / '.join(f'{w:.2f}' for w in walls)} | {loaded} |")
    command = " ".join(["python benchmarks/startup.py", *sys.argv[1:]])
    out = Path(__file__).with_name("startup.md")
    out.write_text(
        "\n".join(
            [
                "# Step start-up: importing the definitions",
                "",
                f"Written by `{command}` ({platform.machine()}, {os.cpu_count()} cores): a "
                "fresh Python process per run, as every step of the multiprocess executor and "
                "of the e2e benchmark.",
                "",
                "| commit | wall s (3 runs) | model libraries loaded |",
                "|---|---|---|",
                *rows,
                "",
            ]
        )
    )
    print(out.read_text())


if __name__ == "__main__":
    main()
