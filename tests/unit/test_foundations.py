"""Pure logic: hashing, names, the status machine, errors and output formatting."""

from __future__ import annotations

import json

import pytest

from mill import errors
from mill.cli.output import emit
from mill.domain.names import generate_job_name, is_valid_name
from mill.domain.status import JobStatus, can_move
from mill.errors import SpecError, SpecIssue, error_from_envelope
from mill.hashing import canonical_json, content_hash


def test_content_hash_golden_values() -> None:
    # Golden values: changing the canonical form would change every snapshot id.
    assert content_hash(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert canonical_json({"b": 1, "a": [1, "x"]}) == '{"a":[1,"x"],"b":1}'
    assert content_hash({"b": 1, "a": 2}) == content_hash({"a": 2, "b": 1})
    assert (
        content_hash({"a": 1}) == "015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862"
    )


def test_generated_job_names_look_like_azure_ones() -> None:
    names = {generate_job_name() for _ in range(200)}
    assert len(names) == 200
    for name in names:
        adjective, noun, suffix = name.split("_")
        assert adjective.isalpha() and noun.isalpha()
        assert len(suffix) == 10 and suffix.isalnum() and suffix.lower() == suffix
        assert is_valid_name(name)


@pytest.mark.parametrize("name", ["", "-lead", "a b", "x" * 256, "semi;colon", "ünï"])
def test_invalid_job_names(name: str) -> None:
    assert not is_valid_name(name)


def test_status_moves_forward_only_and_terminal_is_final() -> None:
    assert can_move(JobStatus.NOT_STARTED, JobStatus.QUEUED)
    assert can_move(JobStatus.QUEUED, JobStatus.RUNNING)  # a skipped event is fine
    assert not can_move(JobStatus.RUNNING, JobStatus.PREPARING)  # a late event is not applied
    assert not can_move(JobStatus.RUNNING, JobStatus.RUNNING)
    assert can_move(JobStatus.QUEUED, JobStatus.CANCELED)
    for terminal in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED):
        assert not can_move(terminal, JobStatus.FAILED)
        assert not can_move(terminal, JobStatus.RUNNING)


def test_spec_issue_renders_file_line_field_value_and_allowed() -> None:
    issue = SpecIssue(
        "unknown input type",
        field="inputs.lr.type",
        file="job.yml",
        line=14,
        value="float",
        has_value=True,
        allowed="uri_file, uri_folder",
    )
    assert issue.render() == (
        "job.yml:14 inputs.lr.type: unknown input type; allowed: uri_file, uri_folder; got 'float'"
    )


def test_errors_round_trip_through_the_envelope() -> None:
    original = SpecError([SpecIssue("bad", field="compute", value=3, has_value=True)], "fix it")
    rebuilt = error_from_envelope(original.to_envelope(), 400)
    assert isinstance(rebuilt, SpecError)
    assert rebuilt.message == original.message and rebuilt.hint == "fix it"
    assert rebuilt.exit_code == 2
    missing = error_from_envelope({"code": "not_found", "message": "no such job"}, 404)
    assert isinstance(missing, errors.NotFoundError) and missing.exit_code == 1


def test_errors_public_surface_is_complete() -> None:
    exported = set(errors.__all__)
    defined = {
        n for n, v in vars(errors).items() if isinstance(v, type) and issubclass(v, Exception)
    }
    assert defined <= exported


ROWS = [
    {"name": "a", "status": "Completed", "inputs": {"x": 1}},
    {"name": "b", "status": "Failed", "inputs": {}},
]


def test_output_json_query(capsys: pytest.CaptureFixture[str]) -> None:
    emit(ROWS, "json", "[?status=='Failed'].name")
    assert json.loads(capsys.readouterr().out) == ["b"]


def test_output_tsv_is_scriptable(capsys: pytest.CaptureFixture[str]) -> None:
    emit(ROWS[0], "tsv", "name")
    assert capsys.readouterr().out == "a\n"
    emit(ROWS, "tsv", "[].[name, status]")
    assert capsys.readouterr().out == "a\tCompleted\nb\tFailed\n"


def test_output_table_uses_given_columns(capsys: pytest.CaptureFixture[str]) -> None:
    emit(ROWS, None, None, columns=(("Name", "name"), ("Status", "status")), default="table")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["Name", "Status"]
    assert lines[2].split() == ["a", "Completed"]
    assert len(lines) == 4


def test_output_yaml(capsys: pytest.CaptureFixture[str]) -> None:
    emit({"name": "a", "tags": {"k": "v"}}, "yaml", None)
    assert capsys.readouterr().out == "name: a\ntags:\n  k: v\n"


def test_bad_query_is_a_usage_error() -> None:
    with pytest.raises(errors.UsageError, match="invalid --query"):
        emit(ROWS, "json", "[?")
