"""Reading and typing product files: every bad row reported by line, the rest kept."""

from __future__ import annotations

import json

import pytest

from lookalike.engine.catalogue.columns import convert, infer_type, parse_type_specs
from lookalike.engine.catalogue.rowcheck import check_rows
from lookalike.engine.catalogue.rows import read_rows
from lookalike.errors import InvalidQuery, Unsupported


def write_csv(path, text: str, extra: bytes = b"") -> None:
    path.write_bytes(text.encode() + extra)


def test_csv_typing_and_problem_rows(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    path = tmp_path / "products.csv"
    write_csv(path,
              "sku,image_url,category,price,in_stock,launched,code,Product Name\n"      # line 1
              "A1,a.png,boots,59.5,true,2024-03-01,007,Red boot\n"                    # line 2
              "A2,http://shop.test/a2.jpg,boots,60,false,2024-03-02,12,\n"           # line 3
              "A1,a.png,bags,1,true,2024-01-01,1,dup\n"                                # line 4: duplicate id
              "A3,,bags,2,true,2024-01-01,1,no image\n"                                # line 5: missing image
              "A4,a.png,bags\n"                                                          # line 6: malformed
              "\"A5\",a.png,bags,3,true,2024-01-01,1,\"multi\nline name\"\n"          # lines 7-8: fine
              ",a.png,bags,3,true,2024-01-01,1,no id\n",                               # line 9: no id
              extra=b"A6,a.png,b\xe9b\xe9,3,true,2024-01-01,1,latin-1\n"                # line 10: not UTF-8
                    b"A7,a.png,bags,3,true,2024-01-01,1,fine\n")                        # line 11
    table = read_rows(path)
    checked = check_rows(table, "sku", ["image_url"], base_dir=tmp_path)
    assert [it.item for it in checked.items] == ["A1", "A2", "A5", "A7"]
    problems = {p.where: p.reason for p in checked.problems}
    assert set(problems) == {"line 4", "line 5", "line 6", "line 9", "line 10"}
    assert "duplicate id" in problems["line 4"] and "line 2" in problems["line 4"]
    assert "missing image" in problems["line 5"]
    assert "malformed" in problems["line 6"]
    assert "missing id" in problems["line 9"]
    assert "not UTF-8" in problems["line 10"]
    assert "A1" in checked.seen_ids and "A6" not in checked.seen_ids
    assert checked.types == {"category": "str", "price": "float", "in_stock": "bool", "launched": "date",
                             "code": "str", "Product Name": "str"}
    first = checked.items[0]
    assert first.image == str(tmp_path / "a.png")  # relative to the product file
    assert first.record_fields() == {"item": "A1", "image": str(tmp_path / "a.png"), "category": "boots",
                                     "price": 59.5, "in_stock": True, "launched": "2024-03-01", "code": "007",
                                     "Product_Name": "Red boot"}
    assert "Product_Name" not in checked.items[1].fields  # empty cell: no value
    assert checked.items[1].image == "http://shop.test/a2.jpg"
    assert checked.renamed == {"Product Name": "Product_Name"}


def test_declared_types_report_bad_values(tmp_path):
    path = tmp_path / "p.csv"
    write_csv(path, "sku,img,price,tags,extra\nA,a.png,12,red|wool,x2\nB,b.png,cheap,blue,x3\nC,c.png,3.5,,\n")
    checked = check_rows(read_rows(path), "sku", ["img"], field_columns=["price", "tags"],
                         types=parse_type_specs(["price=float", "tags=list"]), base_dir=tmp_path)
    assert [it.item for it in checked.items] == ["A", "C"]
    assert checked.items[0].fields == {"price": 12.0, "tags": ["red", "wool"]}
    assert checked.items[1].fields == {"price": 3.5}
    [problem] = checked.problems
    assert problem.where == "line 3" and problem.item == "B"
    assert "column 'price' (float)" in problem.reason and "'cheap' is not a number" in problem.reason


def test_missing_column_and_bad_type_spec(tmp_path):
    path = tmp_path / "p.csv"
    write_csv(path, "sku,img\nA,a.png\n")
    with pytest.raises(InvalidQuery, match="no column 'image_url'.*columns: sku, img"):
        check_rows(read_rows(path), "sku", ["image_url"])
    with pytest.raises(InvalidQuery, match="unknown type 'money'"):
        parse_type_specs(["price=money"])
    with pytest.raises(InvalidQuery, match="COLUMN=TYPE"):
        parse_type_specs(["price"])
    with pytest.raises(Unsupported, match="extension"):
        read_rows(tmp_path / "p.xlsx")


def test_jsonl_rows_keep_types_and_report_bad_lines(tmp_path):
    path = tmp_path / "p.jsonl"
    lines = [json.dumps({"sku": "A", "img": "a.png", "price": 12, "colors": ["red", "blue"], "new": True}).encode(),
             b'{"sku": "B", "img": "b.png",',  # malformed
             b"",
             json.dumps({"sku": 7, "img": "c.png", "price": 3.5}).encode(),
             b'{"sku": "D", "img": "d.png", "name": "caf\xe9"}',  # not UTF-8
             b"[1, 2]",
             json.dumps({"sku": "E", "img": "e.png", "dims": {"w": 1}}).encode()]
    path.write_bytes(b"\n".join(lines) + b"\n")
    checked = check_rows(read_rows(path), "sku", ["img"], base_dir=tmp_path)
    assert [it.item for it in checked.items] == ["A", "7"]
    assert checked.items[0].fields == {"price": 12, "colors": ["red", "blue"], "new": True}
    problems = {p.where: p.reason for p in checked.problems}
    assert set(problems) == {"line 2", "line 5", "line 6", "line 7"}
    assert "malformed JSON" in problems["line 2"] and "not UTF-8" in problems["line 5"]
    assert "not a JSON object" in problems["line 6"] and "column 'dims'" in problems["line 7"]


def test_parquet_rows(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import datetime

    import pyarrow.parquet as pq

    table = pa.table({"sku": ["A", "B"], "img": ["a.png", None], "price": [1.5, 2.0],
                      "launched": [datetime.date(2024, 1, 2), datetime.date(2024, 2, 3)]})
    pq.write_table(table, tmp_path / "p.parquet")
    checked = check_rows(read_rows(tmp_path / "p.parquet"), "sku", ["img"], base_dir=tmp_path)
    assert [it.item for it in checked.items] == ["A"]
    assert checked.items[0].fields == {"price": 1.5, "launched": "2024-01-02"}
    assert [(p.where, p.item) for p in checked.problems] == [("row 2", "B")]


@pytest.mark.parametrize("cells, kind", [
    (["1", "22", "-3"], "int"), (["1", "2.5", ""], "float"), (["true", "False"], "bool"),
    (["2024-01-02", "2024-01-02T10:00"], "date"), (["007", "12"], "str"), (["1", "n/a"], "str"), ([], "str")])
def test_infer_type(cells, kind):
    assert infer_type(cells) == kind


def test_convert_declared():
    assert convert("yes", "bool") is True and convert("0", "bool") is False
    assert convert(" 12 ", "int") == 12 and convert("007", "int") == 7
    assert convert("", "float") is None
    for value, kind in (("1e999", "float"), ("nan", "float"), ("2024/01/02", "date"), ("maybe", "bool"), ("1.5", "int")):
        with pytest.raises(ValueError):
            convert(value, kind)
