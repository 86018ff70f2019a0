"""Loading MLTable folders into pandas: real files in tmp_path, in the forms projects use."""

from __future__ import annotations

from pathlib import Path

import pytest

from mill.data import PATH_COLUMN, load_mltable, validate_mltable
from mill.errors import NotFoundError, NotSupportedError, SpecError

pd = pytest.importorskip("pandas")


def _table(folder: Path, mltable: str, files: dict[str, str | bytes] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "MLTable").write_text(mltable)
    for name, content in (files or {}).items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
    return folder


# The reference example of yaml-reference §13, verbatim apart from the file it names.
REFERENCE = """\
$schema: https://azuremlschemas.azureedge.net/latest/MLTable.schema.json
type: mltable
paths:
  - file: ./titanic.csv
transformations:
  - read_delimited: {delimiter: ",", encoding: ascii, header: all_files_same_headers, empty_as_string: false}
  - convert_column_types: [{columns: temp, column_type: float}]
  - take: 1
"""
TITANIC = "name,temp,age\nann,1,30\nbob,2,\ncid,3,41\n"


def test_reference_example(tmp_path: Path) -> None:
    folder = _table(tmp_path / "t", REFERENCE, {"titanic.csv": TITANIC})
    df = load_mltable(folder)
    assert list(df.columns) == ["name", "temp", "age"]
    assert df.to_dict("records") == [{"name": "ann", "temp": 1.0, "age": 30.0}]
    assert df["temp"].dtype == "float64"
    # The file itself and a str path work too.
    assert load_mltable(str(folder / "MLTable")).equals(df)


def test_header_variants(tmp_path: Path) -> None:
    files = {"a.csv": "x,y\n1,2\n", "b.csv": "x,y\n3,4\n"}
    same = _table(
        tmp_path / "same",
        "paths: [{pattern: ./*.csv}]\ntransformations:\n  - read_delimited\n",
        files,
    )
    assert load_mltable(same).to_dict("list") == {"x": [1, 3], "y": [2, 4]}

    first = _table(
        tmp_path / "first",
        "paths: [{pattern: ./*.csv}]\ntransformations:\n"
        "  - read_delimited: {header: from_first_file, infer_column_types: false}\n",
        {"a.csv": "x,y\n1,2\n", "b.csv": "3,4\n5,6\n"},
    )
    assert load_mltable(first).to_dict("list") == {"x": ["1", "3", "5"], "y": ["2", "4", "6"]}

    none = _table(
        tmp_path / "none",
        "paths: [{file: a.csv}]\ntransformations:\n  - read_delimited: {header: no_header}\n",
        {"a.csv": "1,2\n3,4\n"},
    )
    assert load_mltable(none).to_dict("list") == {"Column1": [1, 3], "Column2": [2, 4]}

    different = _table(
        tmp_path / "different",
        "paths: [{pattern: ./*.csv}]\ntransformations:\n"
        "  - read_delimited: {header: all_files_different_headers}\n",
        {"a.csv": "x,y\n1,2\n", "b.csv": "y,z\n3,4\n"},
    )
    df = load_mltable(different)
    assert list(df.columns) == ["x", "y", "z"]
    assert df["y"].tolist() == [2, 3]
    assert df["x"].isna().tolist() == [False, True]


def test_tsv_and_empty_as_string(tmp_path: Path) -> None:
    content = "name\tcity\tn\nann\t\t1\nbob\tOslo\t\n"
    strings = _table(
        tmp_path / "s",
        'paths: [{file: ./d.tsv}]\ntransformations:\n  - read_delimited: {delimiter: "\\t", empty_as_string: true}\n',
        {"d.tsv": content},
    )
    df = load_mltable(strings)
    assert df["city"].tolist() == ["", "Oslo"]
    assert df["n"].isna().tolist() == [False, True]  # numbers stay null, as in Azure ML

    nulls = _table(
        tmp_path / "n",
        'paths: [{file: ./d.tsv}]\ntransformations:\n  - read_delimited: {delimiter: "\\t", empty_as_string: false}\n',
        {"d.tsv": content},
    )
    assert load_mltable(nulls)["city"].isna().tolist() == [True, False]


def test_latin1_encoding(tmp_path: Path) -> None:
    data = "city,n\nMünchen,1\nSão Paulo,2\n".encode("latin-1")
    good = _table(
        tmp_path / "l",
        "paths: [{file: c.csv}]\ntransformations:\n  - read_delimited: {encoding: latin1}\n",
        {"c.csv": data},
    )
    assert load_mltable(good)["city"].tolist() == ["München", "São Paulo"]

    wrong = _table(
        tmp_path / "u",
        "paths: [{file: c.csv}]\ntransformations:\n  - read_delimited: {encoding: utf8}\n",
        {"c.csv": data},
    )
    with pytest.raises(SpecError) as caught:
        load_mltable(wrong)
    assert "MLTable:3 transformations[0].read_delimited.encoding: c.csv is not utf8 text" in str(
        caught.value
    )


def test_oj_sales_partitions(tmp_path: Path) -> None:
    """The MLTable the oj_sales parallel job writes: nested Store/Brand files."""
    files = {
        "Store1001/dominicks/data.csv": "week,qty\n1,10\n2,11\n",
        "Store1001/tropicana/data.csv": "week,qty\n1,20\n",
        "Store1002/dominicks/part.1.csv": "week,qty\n1,30\n",
    }
    folder = _table(
        tmp_path / "oj",
        """\
paths:
  - pattern: ./**/*.csv
transformations:
  - read_delimited:
      delimiter: ','
      encoding: 'utf8'
      header: all_files_same_headers
      include_path_column: true
  - extract_columns_from_partition_format:
      partition_format: "{Store}/{Brand}/{file_name}.{extension}"
""",
        files,
    )
    df = load_mltable(folder)
    assert list(df.columns) == [
        PATH_COLUMN,
        "week",
        "qty",
        "Store",
        "Brand",
        "file_name",
        "extension",
    ]
    assert df[PATH_COLUMN].tolist() == [
        "Store1001/dominicks/data.csv",
        "Store1001/dominicks/data.csv",
        "Store1001/tropicana/data.csv",
        "Store1002/dominicks/part.1.csv",
    ]
    assert df["Store"].tolist() == ["Store1001", "Store1001", "Store1001", "Store1002"]
    assert df["file_name"].tolist()[-1] == "part.1" and df["extension"].tolist()[-1] == "csv"

    (folder / "MLTable").write_text(
        (folder / "MLTable").read_text() + "  - drop_columns: [Path, file_name, extension]\n"
    )
    df = load_mltable(folder)
    assert list(df.columns) == ["week", "qty", "Store", "Brand"]
    assert df.groupby(["Store", "Brand"])["qty"].sum().to_dict() == {
        ("Store1001", "dominicks"): 21,
        ("Store1001", "tropicana"): 20,
        ("Store1002", "dominicks"): 30,
    }


def test_partition_dates(tmp_path: Path) -> None:
    folder = _table(
        tmp_path / "p",
        "paths: [{folder: ./logs}]\ntransformations:\n  - read_delimited\n"
        "  - extract_columns_from_partition_format: '/{Dept}/{Day:yyyy/MM/dd}/data.csv'\n",
        {"logs/Accounts/2019/01/02/data.csv": "v\n1\n"},
    )
    df = load_mltable(folder)
    assert df["Dept"].tolist() == ["Accounts"]
    assert df["Day"].tolist() == [pd.Timestamp("2019-01-02")]


def test_convert_column_types(tmp_path: Path) -> None:
    folder = _table(
        tmp_path / "c",
        """\
paths: [{file: d.csv}]
transformations:
  - read_delimited: {infer_column_types: false}
  - convert_column_types:
      - {columns: [n, m], column_type: int}
      - {columns: x, column_type: float}
      - {columns: flag, column_type: boolean}
      - {columns: yes_no, column_type: {boolean: {true_values: [si], false_values: ["non"]}}}
      - columns: when
        column_type:
          datetime:
            formats: ["%Y-%m-%d", "%d/%m/%Y %H:%M"]
      - {columns: code, column_type: string}
""",
        {
            "d.csv": "n,m,x,flag,yes_no,when,code\n"
            "1,7,1.5,true,si,2024-01-31,007\n"
            "2,,2,False,non,01/02/2024 13:45,010\n"
        },
    )
    df = load_mltable(folder)
    assert str(df["n"].dtype) == "Int64" and df["n"].tolist() == [1, 2]
    assert df["m"].isna().tolist() == [False, True]
    assert df["x"].tolist() == [1.5, 2.0]
    assert df["flag"].tolist() == [True, False]
    assert df["yes_no"].tolist() == [True, False]
    assert df["when"].tolist() == [pd.Timestamp("2024-01-31"), pd.Timestamp("2024-02-01 13:45")]
    assert df["code"].tolist() == ["007", "010"]


def test_bad_conversion_names_column_and_line(tmp_path: Path) -> None:
    folder = _table(
        tmp_path / "b",
        "paths: [{file: d.csv}]\ntransformations:\n  - read_delimited\n"
        "  - convert_column_types: [{columns: n, column_type: int}]\n",
        {"d.csv": "n\n1\nabc\n"},
    )
    with pytest.raises(SpecError) as caught:
        load_mltable(folder)
    message = str(caught.value)
    assert "MLTable:4 transformations[1].convert_column_types[0].column_type:" in message
    assert "column 'n' of d.csv: value 'abc' cannot be converted to int" in message


def test_take_skip_keep_and_sample(tmp_path: Path) -> None:
    files = {f"part{i}.csv": f"i,v\n{i * 2},a\n{i * 2 + 1},b\n" for i in range(3)}
    base = "paths: [{pattern: ./part*.csv}]\ntransformations:\n  - read_delimited\n"
    folder = _table(
        tmp_path / "k", base + "  - skip: 1\n  - take: 3\n  - keep_columns: [i]\n", files
    )
    df = load_mltable(folder)
    assert df.to_dict("list") == {"i": [1, 2, 3]}

    _table(folder, base + "  - take: 0\n")
    assert list(load_mltable(folder).columns) == ["i", "v"]

    _table(folder, base + "  - take_random_sample: {probability: 0.5, seed: 3}\n")
    first, second = load_mltable(folder), load_mltable(folder)
    assert first.equals(second) and len(first) <= 6


def test_take_stops_reading(tmp_path: Path) -> None:
    """Files after the ones take needs are never opened (the broken one would fail)."""
    folder = _table(
        tmp_path / "t",
        "paths: [{file: a.csv}, {file: b.csv}]\ntransformations:\n  - read_delimited\n  - take: 2\n",
        {"a.csv": "x\n1\n2\n3\n", "b.csv": b"x\n\xff\xfe\n"},
    )
    assert load_mltable(folder)["x"].tolist() == [1, 2]


def test_parquet_folder(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    folder = tmp_path / "pq"
    (folder / "data").mkdir(parents=True)
    pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}).to_parquet(folder / "data" / "0.parquet")
    pd.DataFrame({"a": [3], "b": ["z"]}).to_parquet(folder / "data" / "1.parquet")
    (folder / "data" / ".hidden").write_text("not data")
    _table(
        folder,
        "paths:\n  - folder: ./data\ntransformations:\n  - read_parquet: {include_path_column: true}\n",
    )
    df = load_mltable(folder)
    assert df.to_dict("list") == {
        "Path": ["data/0.parquet", "data/0.parquet", "data/1.parquet"],
        "a": [1, 2, 3],
        "b": ["x", "y", "z"],
    }


def test_json_lines(tmp_path: Path) -> None:
    folder = _table(
        tmp_path / "j",
        "paths: [{file: d.jsonl}]\ntransformations:\n  - read_json_lines: {invalid_lines: drop}\n",
        {"d.jsonl": '{"a": 1}\nnot json\n{"a": 2, "b": "x"}\n'},
    )
    assert load_mltable(folder)["a"].tolist() == [1, 2]


def test_missing_path_names_file_and_line(tmp_path: Path) -> None:
    folder = _table(
        tmp_path / "m", "paths:\n  - file: ./nope.csv\ntransformations: [read_delimited]\n"
    )
    with pytest.raises(SpecError) as caught:
        load_mltable(folder)
    message = str(caught.value)
    assert message.startswith(f"{folder / 'MLTable'}:2 paths[0].file: no such file: ")
    assert "got './nope.csv'" in message
    with pytest.raises(SpecError, match=r"paths\[0\]\.file"):
        validate_mltable(folder)


def test_pattern_matching_nothing(tmp_path: Path) -> None:
    folder = _table(
        tmp_path / "e", "paths:\n  - pattern: ./*.csv\ntransformations: [read_delimited]\n"
    )
    with pytest.raises(SpecError, match=r":2 paths\[0\].pattern: the pattern matches no files"):
        load_mltable(folder)


def test_bad_spec_and_missing_table(tmp_path: Path) -> None:
    folder = _table(tmp_path / "x", "paths: [{file: a.csv}]\ntransformations:\n  - read_excel\n")
    with pytest.raises(SpecError, match=r"MLTable:3 transformations\[0\]: unknown transformation"):
        load_mltable(folder)
    with pytest.raises(NotFoundError, match="no MLTable file in"):
        load_mltable(tmp_path)


def test_drop_unknown_column(tmp_path: Path) -> None:
    folder = _table(
        tmp_path / "d",
        "paths: [{file: a.csv}]\ntransformations:\n  - read_delimited\n  - drop_columns: [nope]\n",
        {"a.csv": "x,y\n1,2\n"},
    )
    with pytest.raises(SpecError) as caught:
        load_mltable(folder)
    assert (
        "MLTable:4 transformations[1].drop_columns: no column 'nope' in a.csv; allowed: one of its columns: x, y"
        in str(caught.value)
    )


def test_not_loadable_tables(tmp_path: Path) -> None:
    files = {"a.csv": "x\n1\n"}
    paths_only = _table(tmp_path / "p", "paths:\n  - folder: .\n", files)
    with pytest.raises(NotSupportedError, match="no read transformation"):
        load_mltable(paths_only)
    summary = validate_mltable(paths_only)
    assert summary["loadable"] is False and "no read transformation" in summary["reason"]
    assert summary["file_count"] == 1  # the MLTable file itself is not data

    filtered = _table(
        tmp_path / "f",
        "paths: [{file: a.csv}]\ntransformations:\n  - read_delimited\n  - filter: 'x > 1'\n",
        files,
    )
    with pytest.raises(
        NotSupportedError, match=r"MLTable:4 transformations\[1\].filter: filter is not supported"
    ):
        load_mltable(filtered)


def test_validate_summary(tmp_path: Path) -> None:
    folder = _table(
        tmp_path / "v",
        "paths:\n  - pattern: ./**/*.csv\n  - file: ./top.csv\ntransformations:\n  - read_delimited\n  - take: 1\n",
        {"top.csv": "x\n1\n", "a/b.csv": "x\n2\n"},
    )
    assert validate_mltable(folder) == {
        "file": str(folder / "MLTable"),
        "paths": [
            {"kind": "pattern", "value": "./**/*.csv", "files": 2},
            {"kind": "file", "value": "./top.csv", "files": 0},  # already matched by the pattern
        ],
        "file_count": 2,
        "transformations": ["read_delimited", "take"],
        "read": "read_delimited",
        "loadable": True,
    }


def test_fsspec_url(tmp_path: Path) -> None:
    """A memory:// folder stands in for s3:// or abfs://: the same fsspec calls."""
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    fs.pipe(
        "/tbl/MLTable",
        b"paths:\n  - pattern: ./*.csv\ntransformations:\n  - read_delimited: {include_path_column: true}\n",
    )
    fs.pipe("/tbl/a.csv", b"x\n1\n")
    fs.pipe("/tbl/b.csv", b"x\n2\n")
    try:
        df = load_mltable("memory://tbl", storage_options={})
        assert df.to_dict("list") == {"Path": ["a.csv", "b.csv"], "x": [1, 2]}
        with pytest.raises(NotFoundError):
            load_mltable("memory://nowhere")
    finally:
        fs.rm("/tbl", recursive=True)
