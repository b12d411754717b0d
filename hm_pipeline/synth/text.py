"""Product names and descriptions written from the attributes, with variation."""

from __future__ import annotations

import numpy as np
import polars as pl

_SYLLABLES = [
    "li",
    "ma",
    "ro",
    "sa",
    "ti",
    "no",
    "ve",
    "ka",
    "be",
    "la",
    "mi",
    "da",
    "jo",
    "ne",
    "ra",
    "el",
    "an",
    "is",
    "to",
    "fi",
    "lu",
    "mo",
    "ze",
    "ha",
    "vi",
    "so",
    "ly",
    "di",
    "co",
    "na",
]
_NAME_SUFFIXES = ["", "", "", " HW", " (1)", " 2-pack", " RW", " slim", " wide", " basic", " TP"]

_FITS = [
    "Fitted",
    "Relaxed-fit",
    "Loose-fit",
    "Regular-fit",
    "Oversized",
    "Slim-fit",
    "Straight-cut",
    "Short",
    "Long",
    "Cropped",
    "Soft",
    "Wide-cut",
]
_FEATURES = [
    "a round neckline",
    "long sleeves",
    "short sleeves",
    "a V-neck",
    "buttons down the front",
    "an elasticated waist",
    "side pockets",
    "a concealed zip",
    "narrow shoulder straps",
    "a drawstring hem",
    "dropped shoulders",
    "ribbing at the cuffs and hem",
    "a wrapover front",
    "a high waist",
    "a collar",
    "a lined hood",
    "flared legs",
    "a zip at the back",
]
_EXTRAS = [
    "Unlined.",
    "Lined.",
    "The polyester content is recycled.",
    "Made from organic cotton.",
    "Soft, brushed inside.",
    "Made from a recycled blend.",
    "Regular fit.",
    "Machine washable.",
    "",
    "",
]
_MATERIALS = {
    "Jersey": ["soft cotton jersey", "stretch jersey", "viscose jersey", "slub jersey"],
    "Knitwear": ["a soft rib knit", "fine-knit fabric", "a chunky knit", "a wool-blend knit"],
    "Denim": ["washed denim", "stretch denim", "rigid denim"],
    "Woven": ["woven fabric", "a crêpe weave", "airy cotton", "a linen blend", "satin"],
    "Trousers": ["woven fabric", "twill", "stretch twill", "a linen blend"],
    "Shoes": ["faux leather", "canvas", "suede-look fabric", "mesh"],
    "Accessories": ["metal", "faux leather", "woven straw", "recycled plastic", "cotton canvas"],
    "Under": ["microfibre", "lace", "soft cotton", "stretch mesh"],
    "Socks": ["a soft cotton blend", "fine-knit fabric", "sheer fabric"],
    "Swim": ["recycled swimwear fabric", "stretch swimwear fabric"],
}
_DEFAULT_MATERIALS = ["cotton", "woven fabric", "a soft blend", "jersey", "a stretch fabric"]


def _materials_for(garment_group: str) -> list[str]:
    for key, mats in _MATERIALS.items():
        if key.lower() in garment_group.lower():
            return mats
    return _DEFAULT_MATERIALS


def product_names(rng: np.random.Generator, n: int) -> np.ndarray:
    """`n` invented product names like 'Lima HW' or 'Rosati'."""
    n_syl = rng.integers(2, 4, size=n)
    parts = rng.choice(_SYLLABLES, size=(n, 3))
    stems = np.where(
        n_syl == 2,
        np.char.add(parts[:, 0], parts[:, 1]),
        np.char.add(np.char.add(parts[:, 0], parts[:, 1]), parts[:, 2]),
    )
    stems = np.char.capitalize(stems)
    suffix = rng.choice(_NAME_SUFFIXES, size=n)
    return np.char.add(stems, suffix)


def descriptions(rng: np.random.Generator, attrs: pl.DataFrame) -> pl.Series:
    """detail_desc written from product type, colour, pattern and garment group.

    `attrs` has product_type_name, colour_group_name, graphical_appearance_name and
    garment_group_name. About 0.4% are empty and about 0.5% span two lines, as in the real file.
    """
    n = attrs.height
    garment = attrs["garment_group_name"].to_numpy()
    uniq, inv = np.unique(garment, return_inverse=True)
    material = np.empty(n, dtype=object)
    for i, g in enumerate(uniq):  # a loop over garment groups (about 20), not over articles
        mask = inv == i
        material[mask] = rng.choice(_materials_for(str(g)), size=int(mask.sum()))
    fit = rng.choice(_FITS, size=n)
    feat1 = rng.choice(_FEATURES, size=n)
    feat2 = rng.choice(_FEATURES, size=n)
    extra = rng.choice(_EXTRAS, size=n)
    mention_colour = rng.random(n) < 0.35
    mention_pattern = rng.random(n) < 0.3
    two_features = rng.random(n) < 0.5
    newline = rng.random(n) < 0.005
    empty = rng.random(n) < 0.004
    df = pl.DataFrame(
        {
            "fit": fit,
            "ptype": attrs["product_type_name"].str.to_lowercase(),
            "material": material.astype(str),
            "feat1": feat1,
            "feat2": feat2,
            "extra": extra,
            "colour": attrs["colour_group_name"].str.to_lowercase(),
            "pattern": attrs["graphical_appearance_name"].str.to_lowercase(),
            "mc": mention_colour,
            "mp": mention_pattern,
            "two": two_features,
            "nl": newline,
            "empty": empty,
        }
    )
    text = df.select(
        pl.when(pl.col("empty"))
        .then(pl.lit(None, dtype=pl.String))
        .otherwise(
            pl.concat_str(
                [
                    pl.col("fit"),
                    pl.lit(" "),
                    pl.col("ptype"),
                    pl.lit(" in "),
                    pl.when(pl.col("mc"))
                    .then(pl.col("colour") + pl.lit(" "))
                    .otherwise(pl.lit("")),
                    pl.col("material"),
                    pl.lit(" with "),
                    pl.col("feat1"),
                    pl.when(pl.col("two"))
                    .then(pl.lit(" and ") + pl.col("feat2"))
                    .otherwise(pl.lit("")),
                    pl.when(pl.col("mp"))
                    .then(pl.lit(", in a ") + pl.col("pattern") + pl.lit(" design"))
                    .otherwise(pl.lit("")),
                    pl.lit("."),
                    pl.when(pl.col("extra") != "")
                    .then(pl.when(pl.col("nl")).then(pl.lit("\n")).otherwise(pl.lit(" ")))
                    .otherwise(pl.lit("")),
                    pl.col("extra"),
                ]
            )
        )
        .alias("detail_desc")
    )
    return text["detail_desc"]
