"""--set path.to.field=value overrides."""

from __future__ import annotations

from typing import Any

import pytest

from mill.errors import SpecError
from mill.specs import apply_overrides


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("settings.force_rerun=True", True),
        ("settings.force_rerun=false", False),
        ("settings.force_rerun=0.1", 0.1),
        ("settings.force_rerun=3", 3),
        ("settings.force_rerun={a: 1, b: [x, y]}", {"a": 1, "b": ["x", "y"]}),
        ("settings.force_rerun=[1, 2]", [1, 2]),
        ("settings.force_rerun=null", None),
        ("settings.force_rerun=", ""),
        ("settings.force_rerun=azureml:m:3", "azureml:m:3"),
        ("settings.force_rerun='007'", "007"),
        ("settings.force_rerun=python a.py # keep", "python a.py # keep"),
        ("settings.force_rerun=a=b", "a=b"),
        ("settings.force_rerun=2024-01-01", "2024-01-01"),
    ],
)
def test_values_are_read_as_yaml(override: str, expected: Any) -> None:
    assert apply_overrides({}, [override]) == {"settings": {"force_rerun": expected}}


def test_nested_paths_create_mappings_and_do_not_touch_the_input() -> None:
    data: dict[str, Any] = {"inputs": {"lr": 0.1}, "outputs": {"model": None}}
    result = apply_overrides(
        data, ["inputs.data.path=data/unlabeled", "outputs.model.mode=upload", "version=7"]
    )
    assert result == {
        "inputs": {"lr": 0.1, "data": {"path": "data/unlabeled"}},
        "outputs": {"model": {"mode": "upload"}},
        "version": 7,
    }
    assert data == {"inputs": {"lr": 0.1}, "outputs": {"model": None}}


def test_later_overrides_win() -> None:
    assert apply_overrides({}, ["a.b=1", "a.b=2"]) == {"a": {"b": 2}}


@pytest.mark.parametrize(
    ("override", "field", "message"),
    [
        ("foo", "", "expected path.to.field=value"),
        ("=1", "", "empty field name in the path"),
        ("a..b=1", "", "empty field name in the path"),
        ("inputs.lr.type=float", "inputs.lr.type", "inside 'inputs.lr', which is a single value"),
        ("tags.x.y=1", "tags.x.y", "inside 'tags', which is a list"),
    ],
)
def test_bad_overrides_name_the_override(override: str, field: str, message: str) -> None:
    with pytest.raises(SpecError) as raised:
        apply_overrides({"inputs": {"lr": 0.1}, "tags": ["a"]}, [override])
    (issue,) = raised.value.issues
    assert issue.file == f"--set {override}"
    assert issue.line is None
    assert issue.field == field
    assert message in issue.render()
    assert issue.render().startswith(f"--set {override}")
