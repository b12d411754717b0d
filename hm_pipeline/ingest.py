"""Kaggle CSV files -> typed tables, with validation.

File-level faults (missing file, empty file, missing or extra column, a column of the wrong
type, a truncated last line, malformed CSV, duplicated ids) raise `InputFileError` naming the
file, the column, the line and the rule. Row-level faults set the row aside in a rejects table
with its source line, the rule and the raw record; nothing is dropped silently.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from hm_pipeline import schema as S

WRONG_TYPE_SHARE = 0.5  # a column whose sampled values fail this often has the wrong type
TYPE_SAMPLE_ROWS = 10_000


class InputFileError(ValueError):
    """A fault that makes a whole input file unusable."""

    def __init__(
        self,
        file: Path | str,
        rule: str,
        detail: str = "",
        column: str | None = None,
        line: int | None = None,
    ):
        self.file, self.rule, self.column, self.line = str(file), rule, column, line
        where = "".join(
            [f", column '{column}'" if column else "", f", line {line}" if line is not None else ""]
        )
        super().__init__(f"{file}{where}: {rule}" + (f": {detail}" if detail else ""))


@dataclass(frozen=True)
class Calendar:
    """The first and last day a transaction may carry."""

    start: date
    end: date


# --- file-level checks -------------------------------------------------------------------


def check_file(path: Path, columns: list[str]) -> None:
    """Existence, emptiness, header and trailing newline of a CSV file."""
    if not path.exists():
        raise InputFileError(path, "missing file", "the input file does not exist")
    size = path.stat().st_size
    if size == 0:
        raise InputFileError(path, "empty file", "the file has no bytes", line=1)
    with open(path, "rb") as fh:
        first = fh.readline()
        second = fh.read(1)
    header = next(csv.reader(io.StringIO(first.decode("utf-8-sig").rstrip("\r\n"))), [])
    missing = [c for c in columns if c not in header]
    extra = [c for c in header if c not in columns]
    if missing:
        raise InputFileError(
            path,
            "missing column",
            f"expected columns {columns}, got {header}",
            column=missing[0],
            line=1,
        )
    if extra:
        raise InputFileError(
            path,
            "extra column",
            f"expected columns {columns}, got {header}",
            column=extra[0],
            line=1,
        )
    if not second:
        raise InputFileError(path, "empty file", "a header but no data rows", line=2)
    with open(path, "rb") as fh:
        fh.seek(size - 1)
        last = fh.read(1)
    if last != b"\n":
        raise InputFileError(
            path,
            "truncated last line",
            "the file does not end with a newline, so its last record may be cut short",
            line=_count_lines(path),
        )


def _count_lines(path: Path) -> int:
    n = 0
    with open(path, "rb") as fh:
        while block := fh.read(1 << 24):
            n += block.count(b"\n")
    return n + 1


def _scan_strings(path: Path, columns: list[str]) -> pl.LazyFrame:
    """Every column as a string, in file order, with the row's position."""
    return pl.scan_csv(
        path,
        schema=dict.fromkeys(columns, pl.String),
        row_index_name="_row",
        empty_string_is_null=True,
        missing_columns="raise",
    )


def _collect(path: Path, lf: pl.LazyFrame) -> pl.DataFrame:
    """Collect, turning a CSV parse failure into an InputFileError for `path`."""
    try:
        return lf.collect()
    except pl.exceptions.PolarsError as exc:
        raise InputFileError(path, "malformed CSV", str(exc).splitlines()[0]) from exc


# --- row-level rules ----------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """A row-level rule: rows where `failed` holds are rejected with `name`."""

    name: str
    column: str
    failed: pl.Expr
    reason: str  # human text; the offending value is appended


def _int_fails(col: str) -> pl.Expr:
    return (
        pl.col(col).is_not_null()
        & pl.col(col).str.strip_chars().cast(pl.Int64, strict=False).is_null()
    )


def _float_fails(col: str) -> pl.Expr:
    return (
        pl.col(col).is_not_null()
        & pl.col(col).str.strip_chars().cast(pl.Float64, strict=False).is_null()
    )


def _type_rules(int_cols: list[str], float_cols: list[str]) -> list[Rule]:
    return [
        Rule("not an integer", c, _int_fails(c), f"{c} is not an integer") for c in int_cols
    ] + [Rule("not a number", c, _float_fails(c), f"{c} is not a number") for c in float_cols]


def _apply_rules(lf: pl.LazyFrame, rules: list[Rule]) -> pl.LazyFrame:
    """Add `_rule` and `_reason`: the first rule each row breaks, or null."""
    rule = pl.lit(None, dtype=pl.String)
    reason = pl.lit(None, dtype=pl.String)
    for r in reversed(rules):
        rule = pl.when(r.failed).then(pl.lit(r.name)).otherwise(rule)
        text = pl.concat_str(
            [pl.lit(r.reason + ": '"), pl.col(r.column).fill_null(""), pl.lit("'")]
        )
        reason = pl.when(r.failed).then(text).otherwise(reason)
    return lf.with_columns(rule.alias("_rule"), reason.alias("_reason"))


def _rejects(lf: pl.LazyFrame, file: str, columns: list[str], line: pl.Expr) -> pl.LazyFrame:
    return lf.filter(pl.col("_rule").is_not_null()).select(
        pl.lit(file).alias("file"),
        line.cast(pl.Int64).alias("source_line"),
        pl.col("_rule").alias("rule"),
        pl.col("_reason").alias("reason"),
        pl.struct(columns).struct.json_encode().alias("record"),
    )


def check_column_types(path: Path, columns: list[str], rules: list[Rule]) -> None:
    """A column whose sampled values mostly break their type rule has the wrong type: a
    file-level fault (a shifted column or a wrong file), not a few bad rows."""
    type_rules = [r for r in rules if r.name in ("not an integer", "not a number", "not a date")]
    if not type_rules:
        return
    sample = _collect(path, _scan_strings(path, columns).head(TYPE_SAMPLE_ROWS))
    for r in type_rules:
        stats = sample.select(
            r.failed.sum().alias("bad"), pl.col(r.column).is_not_null().sum().alias("n")
        )
        bad, n = stats.row(0)
        if n and bad / n >= WRONG_TYPE_SHARE:
            first = sample.filter(r.failed).row(0, named=True)
            raise InputFileError(
                path,
                "wrong type",
                f"{bad} of the first {n} values fail: {r.reason} (first: '{first[r.column]}')",
                column=r.column,
                line=first["_row"] + 2,
            )


def _line_numbers(df: pl.DataFrame, columns: list[str]) -> pl.Series:
    """Physical line of each record: quoted fields may hold newlines (detail_desc does)."""
    newlines = pl.sum_horizontal(pl.col(c).str.count_matches("\n").fill_null(0) for c in columns)
    return df.select((pl.lit(2) + pl.col("_row") + newlines.cum_sum() - newlines).alias("line"))[
        "line"
    ]


def _duplicates(df: pl.DataFrame, path: Path, column: str, what: str) -> None:
    dup = df.filter(pl.col(column).is_duplicated()).sort(column, "_line")
    if dup.height:
        value = dup[column][0]
        lines = dup.filter(pl.col(column) == value)["_line"].to_list()
        raise InputFileError(
            path,
            f"duplicated {what}",
            f"'{value}' appears on lines {lines}",
            column=column,
            line=lines[1],
        )


# --- tables -------------------------------------------------------------------------------


@dataclass
class Ingested:
    """A typed table and the rows set aside, with their reasons."""

    table: pl.DataFrame | pl.LazyFrame
    rejects: pl.DataFrame | pl.LazyFrame


_ARTICLE_INT_COLS = [c for c, t in S.ARTICLES_SCHEMA.items() if t == pl.Int32()]


def ingest_articles(path: Path) -> Ingested:
    """articles.csv -> typed articles; duplicated article ids fail the file."""
    cols = S.ARTICLES_COLUMNS
    check_file(path, cols)
    rules = [
        Rule(
            "missing article_id",
            "article_id",
            pl.col("article_id").is_null(),
            "article_id is empty",
        )
    ]
    rules += _type_rules(_ARTICLE_INT_COLS, [])
    check_column_types(path, cols, rules)
    df = _collect(path, _scan_strings(path, cols))
    df = df.with_columns(_line_numbers(df, cols).alias("_line"))
    df = _apply_rules(df.lazy(), rules).collect()
    good = df.filter(pl.col("_rule").is_null())
    _duplicates(
        good.with_columns(pl.col("article_id").str.strip_chars().cast(pl.Int64)),
        path,
        "article_id",
        "article id",
    )
    table = good.select(
        [
            pl.col(c).str.strip_chars().cast(pl.Int32) if c in _ARTICLE_INT_COLS else pl.col(c)
            for c in cols
        ]
    )
    rejects = _rejects(df.lazy(), path.name, cols, pl.col("_line")).collect()
    return Ingested(table=table, rejects=rejects)


def ingest_customers(path: Path) -> tuple[Ingested, pl.DataFrame]:
    """customers.csv -> typed customers and the id mapping (dense int32 in file order <-> hex).

    A malformed customer id sets the row aside; a duplicated one fails the file."""
    cols = S.CUSTOMERS_COLUMNS
    check_file(path, cols)
    rules = [
        Rule(
            "bad customer_id",
            "customer_id",
            ~pl.col("customer_id").fill_null("").str.contains(S.CUSTOMER_HEX_PATTERN),
            "customer_id is not 64 lowercase hex characters",
        ),
        *_type_rules([], ["FN", "Active", "age"]),
    ]
    check_column_types(path, cols, rules)
    df = _collect(path, _scan_strings(path, cols))
    df = df.with_columns(_line_numbers(df, cols).alias("_line"))
    df = _apply_rules(df.lazy(), rules).collect()
    good = df.filter(pl.col("_rule").is_null())
    _duplicates(good, path, "customer_id", "customer id")
    good = good.with_columns(pl.int_range(0, pl.len(), dtype=pl.Int32).alias("_id"))
    table = good.select(
        pl.col("_id").alias("customer_id"),
        *[pl.col(c).str.strip_chars().cast(pl.Float32) for c in ("FN", "Active")],
        pl.col("club_member_status"),
        pl.col("fashion_news_frequency"),
        pl.col("age").str.strip_chars().cast(pl.Float32),
        pl.col("postal_code"),
    )
    ids = good.select(
        pl.col("_id").alias("customer_id"), pl.col("customer_id").alias("customer_hex")
    )
    rejects = _rejects(df.lazy(), path.name, cols, pl.col("_line")).collect()
    return Ingested(table=table, rejects=rejects), ids


def ingest_transactions(
    path: Path,
    customer_ids: pl.LazyFrame | pl.DataFrame,
    article_ids: pl.LazyFrame | pl.DataFrame,
    calendar: Calendar,
) -> Ingested:
    """transactions_train.csv -> typed transactions (lazy, streamed), in file order.

    `customer_ids` maps customer_hex -> customer_id; `article_ids` lists known article_id."""
    cols = S.TRANSACTIONS_COLUMNS
    check_file(path, cols)
    date_expr = pl.col("t_dat").str.strip_chars().str.to_date("%Y-%m-%d", strict=False)
    price_expr = pl.col("price").str.strip_chars().cast(pl.Float64, strict=False)
    channel_expr = pl.col("sales_channel_id").str.strip_chars().cast(pl.Int64, strict=False)
    not_date = Rule("not a date", "t_dat", date_expr.is_null(), "t_dat is not a YYYY-MM-DD date")
    not_number = Rule(
        "not a number",
        "price",
        pl.col("price").is_not_null() & price_expr.is_null(),
        "price is not a number",
    )
    not_channel = Rule(
        "not an integer",
        "sales_channel_id",
        _int_fails("sales_channel_id"),
        "sales_channel_id is not an integer",
    )
    not_article = Rule(
        "not an integer", "article_id", _int_fails("article_id"), "article_id is not an integer"
    )
    rules = [
        not_date,
        Rule(
            "date outside calendar",
            "t_dat",
            ~date_expr.is_between(calendar.start, calendar.end),
            f"t_dat is outside {calendar.start} .. {calendar.end}",
        ),
        not_number,
        Rule(
            "price not positive",
            "price",
            price_expr.is_null() | price_expr.is_nan() | (price_expr <= 0),
            "price must be a positive number",
        ),
        not_channel,
        Rule(
            "unknown sales channel",
            "sales_channel_id",
            ~channel_expr.is_in(S.SALES_CHANNELS).fill_null(False),
            f"sales_channel_id must be one of {S.SALES_CHANNELS}",
        ),
        Rule(
            "unknown customer",
            "customer_id",
            pl.col("_customer").is_null(),
            "customer_id is not in customers.csv",
        ),
        not_article,
        Rule(
            "unknown article",
            "article_id",
            pl.col("_article").is_null(),
            "article_id is not in articles.csv",
        ),
    ]
    check_column_types(path, cols, [not_date, not_number, not_channel, not_article])
    cust = customer_ids.lazy().select(
        pl.col("customer_hex").alias("customer_id"), pl.col("customer_id").alias("_customer")
    )
    arts = article_ids.lazy().select(
        pl.col("article_id").cast(pl.Int64).alias("_art_key"),
        pl.col("article_id").alias("_article"),
    )
    parsed = (
        _scan_strings(path, cols)
        .join(cust, on="customer_id", how="left", maintain_order="left")
        .with_columns(
            pl.col("article_id").str.strip_chars().cast(pl.Int64, strict=False).alias("_art_key")
        )
        .join(arts, on="_art_key", how="left", maintain_order="left")
    )
    parsed = _apply_rules(parsed, rules)
    table = parsed.filter(pl.col("_rule").is_null()).select(
        date_expr.alias("t_dat"),
        pl.col("_customer").alias("customer_id"),
        pl.col("_article").alias("article_id"),
        price_expr.cast(pl.Float32).alias("price"),
        channel_expr.cast(pl.Int8).alias("sales_channel_id"),
    )
    rejects = _rejects(parsed, path.name, cols, pl.col("_row") + 2)
    return Ingested(table=table, rejects=rejects)


def image_manifest(article_ids: pl.Series, raw_dir: Path) -> pl.DataFrame:
    """article_id, path (relative to raw_dir), width, height, has_image for every article.

    Only image headers are read (PIL opens lazily), one file per article."""
    from concurrent.futures import ThreadPoolExecutor

    from PIL import Image, UnidentifiedImageError

    paths = pl.DataFrame({"article_id": article_ids}).select(
        pl.col("article_id").cast(pl.Int32), S.article_image_relpath_expr().alias("path")
    )

    def size(rel: str) -> tuple[int | None, int | None]:
        try:
            with Image.open(raw_dir / rel) as im:
                return im.size
        except FileNotFoundError:
            return None, None
        except (UnidentifiedImageError, OSError) as exc:
            raise InputFileError(raw_dir / rel, "unreadable image", str(exc)) from exc

    with ThreadPoolExecutor(max_workers=4) as pool:
        sizes = list(pool.map(size, paths["path"].to_list(), chunksize=256))
    return paths.with_columns(
        pl.Series("width", [w for w, _ in sizes], dtype=pl.Int32),
        pl.Series("height", [h for _, h in sizes], dtype=pl.Int32),
    ).with_columns(pl.col("width").is_not_null().alias("has_image"))


def count_records(path: Path) -> int:
    """Data records of a checked CSV file without quoted newlines (transactions_train.csv):
    its newlines less the header's. Read in blocks: polars' reader maps the whole file."""
    return _count_lines(path) - 2
