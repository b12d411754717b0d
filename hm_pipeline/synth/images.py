"""Procedural catalogue images: silhouette from product type, colour from colour group, pattern
from graphical appearance, so that what an image shows is what the tastes act on."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import polars as pl
from PIL import Image, ImageDraw

from hm_pipeline.schema import article_image_relpath

_SHAPES: dict[str, list[tuple[float, float]] | str] = {
    "upper": [
        (0.3, 0.15),
        (0.7, 0.15),
        (0.95, 0.3),
        (0.85, 0.45),
        (0.75, 0.4),
        (0.75, 0.85),
        (0.25, 0.85),
        (0.25, 0.4),
        (0.15, 0.45),
        (0.05, 0.3),
    ],
    "trousers": [
        (0.3, 0.1),
        (0.7, 0.1),
        (0.76, 0.9),
        (0.56, 0.9),
        (0.5, 0.38),
        (0.44, 0.9),
        (0.24, 0.9),
    ],
    "shorts": [
        (0.3, 0.25),
        (0.7, 0.25),
        (0.76, 0.6),
        (0.54, 0.6),
        (0.5, 0.42),
        (0.46, 0.6),
        (0.24, 0.6),
    ],
    "skirt": [(0.35, 0.2), (0.65, 0.2), (0.8, 0.75), (0.2, 0.75)],
    "dress": [(0.38, 0.08), (0.62, 0.08), (0.65, 0.35), (0.85, 0.9), (0.15, 0.9), (0.35, 0.35)],
    "shoes": [(0.15, 0.6), (0.5, 0.6), (0.6, 0.7), (0.9, 0.75), (0.9, 0.85), (0.15, 0.85)],
    "under": [(0.25, 0.35), (0.75, 0.35), (0.7, 0.5), (0.55, 0.65), (0.45, 0.65), (0.3, 0.5)],
    "socks": [(0.4, 0.15), (0.6, 0.15), (0.6, 0.65), (0.78, 0.8), (0.72, 0.9), (0.4, 0.85)],
    "accessory": "ellipse",
    "other": [(0.2, 0.2), (0.8, 0.2), (0.8, 0.8), (0.2, 0.8)],
}
_SHAPE_NAMES = list(_SHAPES)

_COLOURS = [  # longer names first, so 'off white' wins over 'white'
    ("off white", (235, 230, 215)),
    ("white", (246, 246, 246)),
    ("black", (25, 25, 25)),
    ("beige", (215, 195, 160)),
    ("grey", (128, 128, 128)),
    ("turquoise", (60, 180, 180)),
    ("blue", (40, 70, 160)),
    ("green", (50, 130, 60)),
    ("khaki", (120, 115, 70)),
    ("yellow", (235, 210, 50)),
    ("orange", (240, 140, 40)),
    ("red", (190, 30, 40)),
    ("pink", (235, 150, 180)),
    ("lilac", (190, 160, 215)),
    ("purple", (120, 60, 140)),
    ("brown", (110, 70, 40)),
    ("gold", (212, 175, 55)),
    ("silver", (192, 192, 192)),
    ("bronze", (160, 110, 60)),
    ("copper", (184, 115, 51)),
    ("mole", (110, 100, 90)),
    ("transparent", (230, 230, 235)),
]
_PATTERNS = ["solid", "stripe", "check", "dot", "denim", "melange", "diagonal", "print", "lace"]


def shape_of(product_group: str, product_type: str) -> str:
    """The silhouette drawn for a product group / type."""
    t, g = product_type.lower(), product_group.lower()
    if "skirt" in t:
        return "skirt"
    if "short" in t:
        return "shorts"
    if "lower" in g:
        return "trousers"
    if "full body" in g or "dress" in t:
        return "dress"
    if "upper" in g or "nightwear" in g:
        return "upper"
    if "shoe" in g:
        return "shoes"
    if "sock" in g:
        return "socks"
    if "under" in g or "swim" in g:
        return "under"
    if "accessor" in g or "cosmetic" in g or "bag" in t:
        return "accessory"
    return "other"


def colour_of(name: str) -> tuple[int, int, int]:
    """RGB for a colour group name like 'Light Blue' or 'Dark Red'."""
    low = name.lower()
    rgb = None
    for key, value in _COLOURS:
        if key in low:
            rgb = np.array(value, dtype=np.float64)
            break
    if rgb is None:  # unknown names get a stable colour of their own
        h = zlib.crc32(low.encode())
        rgb = np.array([h & 255, (h >> 8) & 255, (h >> 16) & 255], dtype=np.float64)
    if "light" in low:
        rgb = rgb + (255 - rgb) * 0.45
    if "dark" in low:
        rgb = rgb * 0.55
    return tuple(int(v) for v in rgb)


def pattern_of(name: str) -> str:
    """The pattern drawn for a graphical appearance name."""
    low = name.lower()
    for key in ("solid", "stripe", "check", "dot", "denim", "melange", "lace"):
        if key in low:
            return key
    if "all over" in low:
        return "diagonal"
    if "placement" in low or "print" in low or "front" in low:
        return "print"
    return _PATTERNS[zlib.crc32(low.encode()) % len(_PATTERNS)]


def _masks(width: int, height: int) -> np.ndarray:
    out = np.zeros((len(_SHAPES), height, width), dtype=np.float32)
    for i, shape in enumerate(_SHAPES.values()):
        img = Image.new("L", (width, height), 0)
        draw = ImageDraw.Draw(img)
        if shape == "ellipse":
            draw.ellipse((0.25 * width, 0.3 * height, 0.75 * width, 0.7 * height), fill=255)
        else:
            draw.polygon([(x * width, y * height) for x, y in shape], fill=255)
        out[i] = np.asarray(img, dtype=np.float32) / 255.0
    return out


def _patterns(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    p = {
        "solid": np.zeros((height, width), np.float32),
        "stripe": ((y // 4) % 2).astype(np.float32),
        "check": (((y // 6) + (x // 6)) % 2).astype(np.float32),
        "dot": (((x % 8) - 4) ** 2 + ((y % 8) - 4) ** 2 < 5).astype(np.float32),
        "denim": (rng.random((height, width)) * 0.6).astype(np.float32),
        "melange": (rng.random((height, width)) * 0.3).astype(np.float32),
        "diagonal": (((x + y) // 5) % 2).astype(np.float32),
        "print": ((abs(x - width / 2) < width / 6) & (abs(y - height / 2) < height / 8)).astype(
            np.float32
        ),
        "lace": ((((x % 6) - 3) ** 2 + ((y % 6) - 3) ** 2) < 3).astype(np.float32) * 0.5,
    }
    return np.stack([p[k] for k in _PATTERNS])


def write_images(
    articles: pl.DataFrame,
    has_image: np.ndarray,
    out_dir: Path,
    size: tuple[int, int],
    seed: int,
    progress: Callable[[int, int], None] | None = None,
    batch: int = 2048,
    workers: int = 2,
) -> None:
    """Render and save images/<3>/<10>.jpg for the articles flagged in `has_image`, `workers`
    batches at a time (the same files for any number)."""
    width, height = size
    rng = np.random.default_rng(seed)
    masks = _masks(width, height)
    patterns = _patterns(width, height, rng)
    shape_idx = np.array(
        [
            _SHAPE_NAMES.index(shape_of(g, t))
            for g, t in zip(
                articles["product_group_name"], articles["product_type_name"], strict=True
            )
        ]
    )
    colours = np.array([colour_of(c) for c in articles["colour_group_name"]], dtype=np.float32)
    pattern_idx = np.array(
        [_PATTERNS.index(pattern_of(a)) for a in articles["graphical_appearance_name"]]
    )
    ids = articles["article_id"].to_numpy()
    todo = np.flatnonzero(has_image)
    for d in np.unique(ids[todo] // 10_000_000):
        (out_dir / f"{int(d):03d}").mkdir(parents=True, exist_ok=True)

    def render(idx: np.ndarray, shift: np.ndarray, noise: np.ndarray) -> None:
        mask = masks[shape_idx[idx]]
        mask = np.stack(
            [np.roll(m, tuple(s), axis=(0, 1)) for m, s in zip(mask, shift, strict=True)]
        )
        pat = patterns[pattern_idx[idx]]
        col = (
            colours[idx][:, None, None, :] * (1 - 0.45 * pat[..., None])
            + 0.45 * pat[..., None] * 235
        )
        img = 228 * (1 - mask[..., None]) + mask[..., None] * col + noise
        img = np.clip(img, 0, 255).astype(np.uint8)
        for j, a in enumerate(idx):  # encoding is per file; the drawing above is batched
            Image.fromarray(img[j]).save(
                out_dir.parent / article_image_relpath(int(ids[a])), quality=90
            )

    # the random draws stay in order in this thread (the same images whatever the timing);
    # drawing and encoding run in threads (numpy and PIL's encoder release the GIL)
    with ThreadPoolExecutor(max_workers=workers) as threads:
        pending: list[Future] = []
        for b0 in range(0, len(todo), batch):
            idx = todo[b0 : b0 + batch]
            shift = rng.integers(-2, 3, size=(len(idx), 2))
            noise = rng.normal(0, 4, size=(len(idx), height, width, 1)).astype(np.float32)
            pending.append(threads.submit(render, idx, shift, noise))
            if len(pending) >= workers:  # at most `workers` batches' arrays in memory
                pending.pop(0).result()
                if progress:
                    progress(min(b0, len(todo)), len(todo))
        for f in pending:
            f.result()
    if progress:
        progress(len(todo), len(todo))
