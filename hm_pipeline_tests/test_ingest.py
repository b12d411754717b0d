"""Validation of the Kaggle files: one test per rule, on small hand-made files."""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from hm_pipeline import schema as S
from hm_pipeline.ingest import (
    Calendar,
    InputFileError,
    image_manifest,
    ingest_articles,
    ingest_customers,
    ingest_transactions,
)

CAL = Calendar(date(2018, 9, 20), date(2020, 9, 22))
HEX = ["a" * 64, "b" * 64, "c" * 64]


def _article(article_id: str, **over: str) -> dict[str, str]:
    row = {c: "1" for c in S.ARTICLES_COLUMNS}
    row |= {
        "article_id": article_id,
        "product_code": str(int(article_id) // 1000),
        "prod_name": "Tee",
        "product_type_name": "T-shirt",
        "product_group_name": "Garment Upper body",
        "graphical_appearance_name": "Solid",
        "colour_group_name": "Black",
        "perceived_colour_value_name": "Dark",
        "perceived_colour_master_name": "Black",
        "department_name": "Jersey",
        "index_code": "A",
        "index_name": "Ladieswear",
        "index_group_name": "Ladieswear",
        "section_name": "Womens",
        "garment_group_name": "Jersey",
        "detail_desc": "Soft tee",
    }
    return row | over


def _write(path: Path, columns: list[str], rows: list[dict[str, str]]) -> Path:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    path.write_text(buf.getvalue())
    return path


def _articles(tmp: Path, rows: list[dict[str, str]] | None = None) -> Path:
    rows = rows or [_article("0108775015"), _article("0108775044"), _article("0110065001")]
    return _write(tmp / S.ARTICLES_FILE, S.ARTICLES_COLUMNS, rows)


def _customer(cid: str, **over: str) -> dict[str, str]:
    return {
        "customer_id": cid,
        "FN": "1.0",
        "Active": "",
        "club_member_status": "ACTIVE",
        "fashion_news_frequency": "NONE",
        "age": "31.0",
        "postal_code": "f" * 64,
    } | over


def _customers(tmp: Path, rows: list[dict[str, str]] | None = None) -> Path:
    return _write(tmp / S.CUSTOMERS_FILE, S.CUSTOMERS_COLUMNS, rows or [_customer(h) for h in HEX])


def _txn(**over: str) -> dict[str, str]:
    return {
        "t_dat": "2020-09-01",
        "customer_id": HEX[0],
        "article_id": "108775015",
        "price": "0.0254067796610169",
        "sales_channel_id": "2",
    } | over


def _transactions(tmp: Path, rows: list[dict[str, str]]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Ingest transactions after valid articles and customers: (table, rejects)."""
    arts = ingest_articles(_articles(tmp)).table
    _, ids = ingest_customers(_customers(tmp))
    path = _write(tmp / S.TRANSACTIONS_FILE, S.TRANSACTIONS_COLUMNS, rows)
    res = ingest_transactions(path, ids, arts.select("article_id"), CAL)
    return res.table.collect(), res.rejects.collect()


# --- file-level faults ---------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match=r"articles.csv: missing file"):
        ingest_articles(tmp_path / S.ARTICLES_FILE)


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / S.ARTICLES_FILE).write_text("")
    with pytest.raises(InputFileError, match=r"articles.csv, line 1: empty file"):
        ingest_articles(tmp_path / S.ARTICLES_FILE)


def test_header_without_rows_is_an_empty_file(tmp_path: Path) -> None:
    (tmp_path / S.CUSTOMERS_FILE).write_text(",".join(S.CUSTOMERS_COLUMNS) + "\n")
    with pytest.raises(
        InputFileError, match=r"customers.csv, line 2: empty file: a header but no data"
    ):
        ingest_customers(tmp_path / S.CUSTOMERS_FILE)


def test_missing_column(tmp_path: Path) -> None:
    cols = [c for c in S.CUSTOMERS_COLUMNS if c != "age"]
    _write(
        tmp_path / S.CUSTOMERS_FILE,
        cols,
        [{c: v for c, v in _customer(HEX[0]).items() if c != "age"}],
    )
    with pytest.raises(
        InputFileError, match=r"customers.csv, column 'age', line 1: missing column"
    ):
        ingest_customers(tmp_path / S.CUSTOMERS_FILE)


def test_extra_column(tmp_path: Path) -> None:
    _write(
        tmp_path / S.CUSTOMERS_FILE,
        [*S.CUSTOMERS_COLUMNS, "shoe_size"],
        [_customer(HEX[0]) | {"shoe_size": "38"}],
    )
    with pytest.raises(InputFileError, match=r"column 'shoe_size', line 1: extra column"):
        ingest_customers(tmp_path / S.CUSTOMERS_FILE)


def test_wrong_type_column(tmp_path: Path) -> None:
    rows = [_txn(price=p) for p in ("cheap", "dear", "cheap", "0.02")]
    with pytest.raises(
        InputFileError, match=r"transactions_train.csv, column 'price', line 2: wrong type"
    ):
        _transactions(tmp_path, rows)


def test_truncated_last_line(tmp_path: Path) -> None:
    path = _customers(tmp_path)
    path.write_bytes(path.read_bytes()[:-20])  # cut inside the last record
    with pytest.raises(InputFileError, match=r"customers.csv, line 4: truncated last line"):
        ingest_customers(path)


def test_duplicated_article_ids(tmp_path: Path) -> None:
    path = _articles(
        tmp_path, [_article("0108775015"), _article("0110065001"), _article("0108775015")]
    )
    with pytest.raises(
        InputFileError, match=r"column 'article_id', line 4: duplicated article id.*\[2, 4\]"
    ):
        ingest_articles(path)


def test_duplicated_customer_ids(tmp_path: Path) -> None:
    path = _customers(tmp_path, [_customer(HEX[0]), _customer(HEX[0])])
    with pytest.raises(InputFileError, match=r"line 3: duplicated customer id"):
        ingest_customers(path)


def test_ragged_row_is_malformed_csv(tmp_path: Path) -> None:
    path = _customers(tmp_path)
    path.write_text(
        path.read_text() + HEX[1].replace("b", "d") + ",1.0,1.0,ACTIVE,NONE,30.0,x,extra,more\n"
    )
    with pytest.raises(InputFileError, match=r"customers.csv: malformed CSV"):
        ingest_customers(path)


# --- row-level faults -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "rule"),
    [
        (_txn(t_dat="2020-13-01"), "not a date"),
        (_txn(t_dat="01/09/2020"), "not a date"),
        (_txn(t_dat="2017-01-04"), "date outside calendar"),
        (_txn(t_dat="2020-09-23"), "date outside calendar"),
        (_txn(price="0"), "price not positive"),
        (_txn(price="-0.01"), "price not positive"),
        (_txn(price="NaN"), "price not positive"),
        (_txn(price=""), "price not positive"),
        (_txn(price="abc"), "not a number"),
        (_txn(sales_channel_id="3"), "unknown sales channel"),
        (_txn(sales_channel_id="web"), "not an integer"),
        (_txn(customer_id="d" * 64), "unknown customer"),
        (_txn(article_id="999999999"), "unknown article"),
        (_txn(article_id="10877501x"), "not an integer"),
    ],
)
def test_transaction_row_rules(tmp_path: Path, row: dict[str, str], rule: str) -> None:
    good = [
        _txn(),
        _txn(customer_id=HEX[1]),
        _txn(customer_id=HEX[2]),
        _txn(article_id="110065001"),
    ]
    table, rejects = _transactions(tmp_path, [*good[:2], row, *good[2:]])
    assert rejects.select("file", "source_line", "rule").rows() == [(S.TRANSACTIONS_FILE, 4, rule)]
    assert rejects["record"][0].startswith('{"t_dat"')  # the raw values are kept
    assert table.height == len(good)
    assert table.schema == pl.Schema(S.TRANSACTIONS_SCHEMA)


def test_identical_rows_are_kept(tmp_path: Path) -> None:
    table, rejects = _transactions(tmp_path, [_txn(), _txn(), _txn(customer_id=HEX[1])])
    assert rejects.height == 0
    assert table.height == 3


def test_customer_with_bad_id_is_set_aside_with_its_line(tmp_path: Path) -> None:
    path = _customers(tmp_path, [_customer(HEX[0]), _customer("XYZ"), _customer(HEX[1])])
    res, ids = ingest_customers(path)
    assert res.rejects.select("source_line", "rule").rows() == [(3, "bad customer_id")]
    assert ids["customer_hex"].to_list() == [HEX[0], HEX[1]]
    assert res.table.schema == pl.Schema(S.CUSTOMERS_SCHEMA)


def test_customer_with_unparseable_age_is_set_aside(tmp_path: Path) -> None:
    rows = [_customer(h) for h in HEX] + [_customer("e" * 64, age="thirty")]
    res, _ = ingest_customers(_customers(tmp_path, rows))
    assert res.rejects.select("source_line", "rule").rows() == [(5, "not a number")]
    assert "age is not a number: 'thirty'" in res.rejects["reason"][0]


def test_article_line_numbers_count_newlines_inside_quotes(tmp_path: Path) -> None:
    rows = [
        _article("0108775015", detail_desc="Two\nlines"),
        _article("0108775044"),
        _article("0110065001", product_type_no="x"),
    ]
    res = ingest_articles(_articles(tmp_path, rows))
    # header (1), first record spans 2-3, second is 4, the bad one is line 5
    assert res.rejects.select("source_line", "rule").rows() == [(5, "not an integer")]
    assert res.table.height == 2
    assert res.table.schema == pl.Schema(S.ARTICLES_SCHEMA)


def test_customer_id_mapping_round_trips(tmp_path: Path) -> None:
    res, ids = ingest_customers(_customers(tmp_path))
    assert ids["customer_id"].to_list() == [0, 1, 2]
    back = res.table.join(ids, on="customer_id").sort("customer_id")["customer_hex"].to_list()
    assert back == HEX


def test_image_manifest_flags_missing_images(tmp_path: Path) -> None:
    from PIL import Image

    img = tmp_path / S.article_image_relpath(108775015)
    img.parent.mkdir(parents=True)
    Image.new("RGB", (40, 60)).save(img)
    m = image_manifest(pl.Series([108775015, 110065001]), tmp_path)
    assert m.rows() == [
        (108775015, "images/010/0108775015.jpg", 40, 60, True),
        (110065001, "images/011/0110065001.jpg", None, None, False),
    ]
