"""Parsing MLTable files: the forms real projects use, and errors that name file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from mill.errors import SpecError
from mill.specs import MLTableSpec, load_mltable_spec, parse_mltable_text
from mill.specs.mltable_steps import (
    MLTABLE_TRANSFORMATIONS,
    ConvertColumnTypes,
    DropColumns,
    ExtractPartitionFormat,
    ReadDelimited,
    ReadParquet,
    Take,
)

REFERENCE = """\
$schema: https://azuremlschemas.azureedge.net/latest/MLTable.schema.json
type: mltable
paths:
  - file: ./titanic.csv
transformations:
  - read_delimited:
      delimiter: ","
      encoding: ascii
      header: all_files_same_headers
      empty_as_string: false
  - convert_column_types: [{columns: temp, column_type: float}]
  - take: 1
"""


def _error(text: str) -> str:
    with pytest.raises(SpecError) as caught:
        parse_mltable_text(text, "data/MLTable")
    return caught.value.message


def test_the_reference_example() -> None:
    spec = parse_mltable_text(REFERENCE)
    assert isinstance(spec, MLTableSpec)
    assert [(p.kind, p.value) for p in spec.paths] == [("file", "./titanic.csv")]
    read, convert, take = spec.transformations
    assert isinstance(read, ReadDelimited) and spec.read is read
    assert (read.delimiter, read.encoding, read.codec, read.header) == (
        ",",
        "ascii",
        "ascii",
        "all_files_same_headers",
    )
    assert isinstance(convert, ConvertColumnTypes)
    assert convert.conversions[0].columns == ["temp"]
    assert convert.conversions[0].column_type.kind == "float"
    assert isinstance(take, Take) and take.count == 1


def test_bare_read_parquet_and_patterns() -> None:
    spec = parse_mltable_text(
        "paths:\n  - pattern: ./**/*.parquet\ntransformations:\n  - read_parquet\n"
    )
    assert isinstance(spec.read, ReadParquet) and not spec.read.include_path_column
    assert spec.paths[0].kind == "pattern"


def test_the_oj_sales_form() -> None:
    spec = parse_mltable_text(
        """\
paths:
  - pattern: ./**/*.csv
transformations:
  - read_delimited:
      delimiter: ','
      header: all_files_same_headers
      include_path_column: true
  - extract_columns_from_partition_format:
      partition_format: "{Store}/{Brand}/{file_name}.{extension}"
  - drop_columns: [Path, file_name, extension]
"""
    )
    _, extract, drop = spec.transformations
    assert isinstance(extract, ExtractPartitionFormat)
    assert extract.partition_format == "{Store}/{Brand}/{file_name}.{extension}"
    assert isinstance(drop, DropColumns) and drop.columns == ["Path", "file_name", "extension"]


def test_shorthands_and_column_type_mappings() -> None:
    spec = parse_mltable_text(
        """\
paths: [{folder: ./data}]
transformations:
  - read_delimited: {encoding: UTF-8, header: no_header}
  - extract_columns_from_partition_format: "{Year}/{file}.csv"
  - drop_columns: Column3
  - keep_columns: [Column1, Column2, Year]
  - skip: 2
  - take_random_sample: {probability: 0.5, seed: 7}
  - convert_column_types:
      - columns: [Column1]
        column_type:
          datetime:
            formats: ["%Y-%m-%d", "%d/%m/%Y"]
      - columns: Column2
        column_type: {boolean: {true_values: ["yes"], false_values: ["no"]}}
"""
    )
    steps = spec.transformations
    assert steps[0].codec == "utf-8-sig"  # type: ignore[attr-defined]
    assert steps[1].partition_format == "{Year}/{file}.csv"  # type: ignore[attr-defined]
    assert steps[2].columns == ["Column3"]  # type: ignore[attr-defined]
    conversions = steps[6].conversions  # type: ignore[attr-defined]
    assert conversions[0].column_type.formats == ["%Y-%m-%d", "%d/%m/%Y"]
    assert conversions[1].column_type.true_values == ["yes"]


def test_paths_only_is_valid_but_has_no_read() -> None:
    spec = parse_mltable_text("paths:\n  - folder: ./images\n")
    assert spec.read is None and spec.transformations == []


def test_unknown_transformation_lists_the_allowed_ones() -> None:
    message = _error(
        "paths:\n  - file: a.csv\ntransformations:\n  - read_delimited\n  - sort_by: x\n"
    )
    assert message.startswith("data/MLTable:5 transformations[1].sort_by: unknown transformation")
    assert "got 'sort_by'" in message
    for name in MLTABLE_TRANSFORMATIONS:
        assert name in message


def test_bare_unknown_transformation() -> None:
    message = _error("paths:\n  - file: a.csv\ntransformations:\n  - read_csv\n")
    assert "data/MLTable:4 transformations[0]: unknown transformation" in message


def test_wrong_field_types_name_field_value_and_allowed() -> None:
    message = _error(
        """\
paths:
  - file: a.csv
transformations:
  - read_delimited:
      encoding: ebcdic
      header: first_row
      empty_as_string: "no"
  - take: ten
"""
    )
    lines = message.splitlines()
    assert lines[0] == (
        "data/MLTable:5 transformations[0].read_delimited.encoding: expected one of utf8, "
        "ascii, latin1, iso88591, utf16, windows1252; got 'ebcdic'"
    )
    assert lines[1].startswith("data/MLTable:6 transformations[0].read_delimited.header: ")
    assert "from_first_file" in lines[1] and "got 'first_row'" in lines[1]
    assert lines[2] == (
        "data/MLTable:7 transformations[0].read_delimited.empty_as_string: "
        "expected true or false; got 'no'"
    )
    assert lines[3] == "data/MLTable:8 transformations[1].take: expected an integer; got 'ten'"


def test_bad_column_type() -> None:
    message = _error(
        "paths: [{file: a.csv}]\ntransformations:\n  - read_delimited\n"
        "  - convert_column_types:\n      - {columns: a, column_type: decimal}\n"
    )
    assert "data/MLTable:5 transformations[1].convert_column_types[0].column_type:" in message
    assert "got 'decimal'" in message and "int, float, string, boolean, datetime" in message


def test_unknown_option_suggests() -> None:
    message = _error(
        "paths: [{file: a.csv}]\ntransformations:\n  - read_delimited: {delimeter: ';'}\n"
    )
    assert (
        "transformations[0].read_delimited.delimeter: unknown field; did you mean 'delimiter'?"
        in message
    )


def test_read_must_come_first() -> None:
    message = _error("paths: [{file: a.csv}]\ntransformations:\n  - take: 5\n  - read_parquet\n")
    assert (
        "data/MLTable:4 transformations[1].read_parquet: the read transformation must be" in message
    )


def test_paths_errors() -> None:
    assert "paths: required field is missing" in _error("transformations: [read_parquet]\n")
    message = _error("paths:\n  - file: a.csv\n    folder: b\n  - url: c\n")
    assert "data/MLTable:2 paths[0]: a path needs exactly one key, found 2" in message
    assert "data/MLTable:4 paths[1].url: unknown field" in message


def test_bad_yaml_names_the_line() -> None:
    message = _error(
        "paths:\n  - file: a.csv\ntransformations:\n  - read_delimited: {delimiter: ','\n"
    )
    assert message.startswith("data/MLTable:")
    assert "invalid YAML" in message


def test_type_must_be_mltable() -> None:
    assert "data/MLTable:1 type: expected one of mltable; got 'uri_folder'" in _error(
        "type: uri_folder\npaths: [{file: a}]\n"
    )


def test_load_from_a_folder_or_the_file(tmp_path: Path) -> None:
    (tmp_path / "MLTable").write_text(REFERENCE)
    assert load_mltable_spec(tmp_path).paths[0].value == "./titanic.csv"
    spec = load_mltable_spec(tmp_path / "MLTable")
    issue = spec.issue("no such file", ("paths", 0, "file"), value="./titanic.csv")
    assert (
        issue.render()
        == f"{tmp_path / 'MLTable'}:4 paths[0].file: no such file; got './titanic.csv'"
    )


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="file not found"):
        load_mltable_spec(tmp_path)
