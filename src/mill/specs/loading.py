"""Loading a command job: YAML file -> ``--set`` overrides -> validation -> :class:`CommandJob`."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mill.errors import SpecError, SpecIssue

from .command_job import CommandJob
from .context import SpecContext
from .overrides import apply_overrides_tracked
from .problems import from_validation_error, problem, to_issues
from .yamldoc import FieldPath, YamlDocument, load_yaml

__all__ = ["load_command_job", "parse_command_job"]

_OTHER_JOB_SCHEMAS = {
    "sweepjob": "sweep",
    "pipelinejob": "pipeline",
    "sparkjob": "spark",
    "automljob": "automl",
}


def load_command_job(path: Path, overrides: Sequence[str] = ()) -> CommandJob:
    """Read, override, validate and resolve the command job in the YAML file at ``path``.

    Relative paths resolve against the file's folder; ``experiment_name`` defaults to the
    folder's name. Raises :class:`~mill.errors.SpecError` listing every problem found.
    """
    doc = load_yaml(path)
    data, origins = apply_overrides_tracked(doc.data, overrides)
    return _parse(
        data,
        source=doc,
        base_dir=doc.base_dir,
        default_experiment=doc.base_dir.name or None,
        overrides=origins,
    )


def parse_command_job(
    data: Mapping[str, Any],
    *,
    source: YamlDocument | None = None,
    base_dir: Path | None = None,
    default_experiment: str | None = None,
) -> CommandJob:
    """Validate a command job given as a mapping (a parsed YAML file or a JSON body).

    ``source`` locates problems (file and line); ``base_dir`` is where relative local paths
    start, and without it they are left exactly as given (the server's case).
    """
    return _parse(
        data, source=source, base_dir=base_dir, default_experiment=default_experiment, overrides={}
    )


def _parse(
    data: Any,
    *,
    source: YamlDocument | None,
    base_dir: Path | None,
    default_experiment: str | None,
    overrides: Mapping[FieldPath, str],
) -> CommandJob:
    if not isinstance(data, Mapping):
        shown = source.file if source is not None else None
        raise SpecError(
            [SpecIssue("expected a mapping of job fields", file=shown, value=data, has_value=True)]
        )
    _reject_other_job_types(data, source, overrides)
    body = dict(data)
    if body.get("experiment_name") is None and default_experiment:
        body["experiment_name"] = default_experiment
    shown_dir = os.path.dirname(source.file) if source is not None else None
    context = SpecContext(
        base_dir=Path(os.path.abspath(base_dir)) if base_dir else None, shown_dir=shown_dir
    )
    try:
        return CommandJob.model_validate(body, context=context.as_context())
    except ValidationError as exc:
        problems = from_validation_error(exc, CommandJob)
        raise SpecError(to_issues(problems, source, overrides)) from None


def _reject_other_job_types(
    data: Mapping[str, Any], source: YamlDocument | None, overrides: Mapping[FieldPath, str]
) -> None:
    kind = data.get("type")
    path: FieldPath = ("type",)
    if kind is None and isinstance(data.get("$schema"), str):
        tail = data["$schema"].rsplit("/", 1)[-1].split(".", 1)[0].lower()
        kind, path = _OTHER_JOB_SCHEMAS.get(tail), ("$schema",)
    if not isinstance(kind, str) or kind.strip().lower() not in CommandJob.unsupported_types:
        return
    found = problem(
        f"{kind.strip()} jobs are not supported yet; only command jobs run in this version",
        path=path,
        value=data.get(str(path[0])),
        allowed="command",
    )
    raise SpecError(to_issues([found], source, overrides))
