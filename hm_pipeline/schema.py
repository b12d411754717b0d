"""Column names and dtypes of every table, in one place.

The raw CSV schemas are those of the Kaggle files; the typed schemas are what the lake's
parquet tables hold. Writers, validators, checks and tests all read them from here.
"""

from __future__ import annotations

import polars as pl

ARTICLES_FILE = "articles.csv"
CUSTOMERS_FILE = "customers.csv"
TRANSACTIONS_FILE = "transactions_train.csv"
SAMPLE_SUBMISSION_FILE = "sample_submission.csv"
IMAGES_DIR = "images"
SYNTHETIC_DIR = "_synthetic"

# Raw CSV columns, in file order.
ARTICLES_COLUMNS: list[str] = [
    "article_id",
    "product_code",
    "prod_name",
    "product_type_no",
    "product_type_name",
    "product_group_name",
    "graphical_appearance_no",
    "graphical_appearance_name",
    "colour_group_code",
    "colour_group_name",
    "perceived_colour_value_id",
    "perceived_colour_value_name",
    "perceived_colour_master_id",
    "perceived_colour_master_name",
    "department_no",
    "department_name",
    "index_code",
    "index_name",
    "index_group_no",
    "index_group_name",
    "section_no",
    "section_name",
    "garment_group_no",
    "garment_group_name",
    "detail_desc",
]
CUSTOMERS_COLUMNS: list[str] = [
    "customer_id",
    "FN",
    "Active",
    "club_member_status",
    "fashion_news_frequency",
    "age",
    "postal_code",
]
TRANSACTIONS_COLUMNS: list[str] = [
    "t_dat",
    "customer_id",
    "article_id",
    "price",
    "sales_channel_id",
]

# Typed lake schemas.
ARTICLES_SCHEMA: dict[str, pl.DataType] = {
    c: (
        pl.Int32()
        if c.endswith(("_no", "_code", "_id")) and c not in ("index_code",)
        else pl.String()
    )
    for c in ARTICLES_COLUMNS
}
CUSTOMERS_SCHEMA: dict[str, pl.DataType] = {
    "customer_id": pl.Int32(),
    "FN": pl.Float32(),
    "Active": pl.Float32(),
    "club_member_status": pl.String(),
    "fashion_news_frequency": pl.String(),
    "age": pl.Float32(),
    "postal_code": pl.String(),
}
CUSTOMER_IDS_SCHEMA: dict[str, pl.DataType] = {
    "customer_id": pl.Int32(),
    "customer_hex": pl.String(),
}
TRANSACTIONS_SCHEMA: dict[str, pl.DataType] = {
    "t_dat": pl.Date(),
    "customer_id": pl.Int32(),
    "article_id": pl.Int32(),
    "price": pl.Float32(),
    "sales_channel_id": pl.Int8(),
}
IMAGE_MANIFEST_SCHEMA: dict[str, pl.DataType] = {
    "article_id": pl.Int32(),
    "path": pl.String(),
    "width": pl.Int32(),
    "height": pl.Int32(),
    "has_image": pl.Boolean(),
}
REJECTS_SCHEMA: dict[str, pl.DataType] = {
    "file": pl.String(),
    "source_line": pl.Int64(),
    "rule": pl.String(),
    "reason": pl.String(),
    "record": pl.String(),
}

SALES_CHANNELS = (1, 2)
CUSTOMER_HEX_PATTERN = r"^[0-9a-f]{64}$"


def article_image_relpath(article_id: int) -> str:
    """Relative path of an article's image: images/<first 3 digits>/<10 digits>.jpg."""
    s = f"{article_id:010d}"
    return f"{IMAGES_DIR}/{s[:3]}/{s}.jpg"


def article_image_relpath_expr(col: str = "article_id") -> pl.Expr:
    """Polars expression giving article_image_relpath for a column of article ids."""
    s = pl.col(col).cast(pl.String).str.zfill(10)
    return pl.concat_str(
        [pl.lit(IMAGES_DIR + "/"), s.str.slice(0, 3), pl.lit("/"), s, pl.lit(".jpg")]
    )
