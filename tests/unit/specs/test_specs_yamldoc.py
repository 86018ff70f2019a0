"""load_yaml: line numbers, duplicate keys and precise parse errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mill.errors import SpecError
from mill.specs import load_yaml


def _doc(tmp_path: Path, text: str, name: str = "job.yml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_records_the_line_of_every_key_and_item(tmp_path: Path) -> None:
    path = _doc(
        tmp_path,
        """\
        # a comment
        command: >-
          python main.py
        inputs:
          lr: {type: number, value: 0.1}
          data:
            type: uri_folder
        tags:
          - one
          - two
        """,
    )
    doc = load_yaml(path)
    assert doc.file == str(path)
    assert doc.base_dir == tmp_path
    assert doc.data["inputs"]["lr"] == {"type": "number", "value": 0.1}
    assert doc.line_of(("command",)) == 2
    assert doc.line_of(("inputs",)) == 4
    assert doc.line_of(("inputs", "lr")) == 5
    assert doc.line_of(("inputs", "lr", "value")) == 5
    assert doc.line_of(("inputs", "data", "type")) == 7
    assert doc.line_of(("tags", 1)) == 10
    # A key the file does not hold: the line of its nearest ancestor.
    assert doc.line_of(("inputs", "data", "path")) == 6
    assert doc.line_of(("nothing",)) is None
    assert doc.has_line(("inputs", "data")) and not doc.has_line(("inputs", "data", "path"))


def test_dates_stay_text_and_merge_keys_work(tmp_path: Path) -> None:
    path = _doc(
        tmp_path,
        """\
        version: 2024-01-01
        base: &base
          a: 1
        other:
          <<: *base
          b: 2
          a: 3
        """,
    )
    doc = load_yaml(path)
    assert doc.data["version"] == "2024-01-01"
    assert doc.data["other"] == {"a": 3, "b": 2}
    assert doc.line_of(("other", "a")) == 7


def test_duplicate_keys_are_errors(tmp_path: Path) -> None:
    path = _doc(
        tmp_path,
        """\
        command: echo
        inputs:
          a: 1
          a: 2
        command: again
        """,
    )
    with pytest.raises(SpecError) as raised:
        load_yaml(path)
    assert [(i.line, i.message) for i in raised.value.issues] == [
        (4, "duplicate key 'a' (first given on line 3)"),
        (5, "duplicate key 'command' (first given on line 1)"),
    ]
    assert f"{path}:4: duplicate key 'a'" in raised.value.message


def test_malformed_yaml_names_file_line_and_problem(tmp_path: Path) -> None:
    path = _doc(tmp_path, "command: echo\ninputs:\n  a: [1, 2\n  b: 3\n")
    with pytest.raises(SpecError) as raised:
        load_yaml(path)
    (issue,) = raised.value.issues
    assert issue.file == str(path)
    assert issue.line == 4
    assert issue.message.startswith("invalid YAML: ")
    assert raised.value.hint is None


def test_template_placeholders_get_a_hint(tmp_path: Path) -> None:
    path = _doc(tmp_path, "name: {{ENDPOINT_NAME}}\nimage: {{ACR_NAME}}.azurecr.io/x\n")
    with pytest.raises(SpecError) as raised:
        load_yaml(path)
    assert raised.value.issues[0].line == 2
    assert raised.value.hint is not None and "template" in raised.value.hint


def test_a_placeholder_that_parses_as_a_mapping_key_also_gets_the_hint(tmp_path: Path) -> None:
    path = _doc(tmp_path, "command: echo\nname: {{ENDPOINT_NAME}}\n")
    with pytest.raises(SpecError) as raised:
        load_yaml(path)
    assert raised.value.issues[0].line == 2
    assert raised.value.hint is not None and "template" in raised.value.hint


def test_azure_expressions_are_not_mistaken_for_templates(tmp_path: Path) -> None:
    path = _doc(tmp_path, "command: echo ${{inputs.x}}\nbad: [\n")
    with pytest.raises(SpecError) as raised:
        load_yaml(path)
    assert raised.value.hint is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        ("# only a comment\n", "the file is empty"),
        ("- a\n- b\n", "expected a mapping of fields at the top level, found a list"),
        ("just text\n", "expected a mapping of fields at the top level, found the single value"),
    ],
)
def test_empty_or_non_mapping_files(tmp_path: Path, text: str, message: str) -> None:
    path = _doc(tmp_path, text)
    with pytest.raises(SpecError) as raised:
        load_yaml(path)
    assert message in raised.value.message
    assert raised.value.issues[0].file == str(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as raised:
        load_yaml(tmp_path / "nope.yml")
    assert raised.value.message == f"file not found: {tmp_path / 'nope.yml'}"


def test_a_folder_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="found a folder"):
        load_yaml(tmp_path)


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "job.yml"
    path.write_bytes(b"command: \xff\xfe\n")
    with pytest.raises(SpecError, match="not UTF-8"):
        load_yaml(path)


def test_the_file_is_shown_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _doc(tmp_path, "a: 1\n", "sub.yml")
    doc = load_yaml(Path("sub.yml"))
    assert doc.file == "sub.yml"
    assert doc.base_dir == tmp_path
