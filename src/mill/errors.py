"""One error hierarchy for all of Mill.

Every error a user can cause or meet is a :class:`MillError`. Each carries a stable
``code`` (which maps to one HTTP status), a human ``message``, an optional ``hint`` and
structured ``details``. The API answers with the envelope produced by
:meth:`MillError.to_envelope`; the CLI prints ``Error: <message>`` (and the hint) and
exits with :attr:`MillError.exit_code`.

::

    MillError                      500  internal        exit 1
    ├── UsageError                 400  usage           exit 2   bad flags, bad --set
    ├── SpecError                  400  invalid_spec    exit 2   a YAML/JSON spec is wrong
    │     (carries one or more SpecIssue: file, line, field path, value, allowed)
    ├── NotFoundError              404  not_found       exit 1   unknown job, workspace, compute...
    ├── ConflictError              409  conflict        exit 1   already exists / wrong state
    ├── AuthError                  401  unauthorized    exit 1   missing or wrong token
    ├── ServerUnavailableError     503  unavailable     exit 1   the control plane cannot be reached
    ├── DatastoreError             502  datastore_error exit 1   storage behind a datastore failed:
    │     unreachable, credentials refused, path or container missing (names datastore + path)
    ├── JobFailedError             --   job_failed      exit 1   a streamed job did not complete
    └── NotSupportedError          501  not_supported   exit 1   a feature that does not work yet
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AuthError",
    "ConflictError",
    "DatastoreError",
    "JobFailedError",
    "MillError",
    "NotFoundError",
    "NotSupportedError",
    "ServerUnavailableError",
    "SpecError",
    "SpecIssue",
    "UsageError",
    "error_from_envelope",
]


class MillError(Exception):
    """Base of every error Mill raises on purpose."""

    code = "internal"
    http_status = 500
    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details or {}

    def to_envelope(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
            "details": self.details,
        }


class UsageError(MillError):
    code = "usage"
    http_status = 400
    exit_code = 2


@dataclass(frozen=True)
class SpecIssue:
    """One thing wrong with a spec, located as precisely as we can."""

    message: str
    field: str = ""
    file: str | None = None
    line: int | None = None
    value: Any = None
    has_value: bool = False
    allowed: str | None = None

    def render(self) -> str:
        """``job.yml:14 inputs.lr.type: expected one of ...; got 'float'``."""
        where = ""
        if self.file:
            where = self.file if self.line is None else f"{self.file}:{self.line}"
        prefix = " ".join(p for p in (where, self.field) if p)
        text = self.message
        if self.allowed:
            text = f"{text}; allowed: {self.allowed}" if text else f"expected {self.allowed}"
        if self.has_value:
            text = f"{text}; got {_show(self.value)}"
        return f"{prefix}: {text}" if prefix else text

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"message": self.message, "field": self.field}
        if self.file:
            data["file"] = self.file
        if self.line is not None:
            data["line"] = self.line
        if self.has_value:
            data["value"] = _jsonable(self.value)
        if self.allowed:
            data["allowed"] = self.allowed
        return data


class SpecError(MillError):
    """A spec (YAML file, JSON body, ``--set`` override) is wrong; lists every issue found."""

    code = "invalid_spec"
    http_status = 400
    exit_code = 2

    def __init__(self, issues: Sequence[SpecIssue], hint: str | None = None) -> None:
        self.issues = list(issues)
        super().__init__(
            "\n".join(i.render() for i in self.issues) or "invalid spec",
            hint=hint,
            details={"issues": [i.to_dict() for i in self.issues]},
        )

    @classmethod
    def one(cls, message: str, *, hint: str | None = None, **kwargs: Any) -> SpecError:
        """One issue; passing ``value=`` (even ``None``) marks the bad value as known."""
        if "value" in kwargs:
            kwargs["has_value"] = True
        return cls([SpecIssue(message, **kwargs)], hint)


class NotFoundError(MillError):
    code = "not_found"
    http_status = 404


class ConflictError(MillError):
    code = "conflict"
    http_status = 409


class AuthError(MillError):
    code = "unauthorized"
    http_status = 401


class ServerUnavailableError(MillError):
    code = "unavailable"
    http_status = 503


class DatastoreError(MillError):
    """The storage behind a datastore failed the request: unreachable, refused the
    credentials, or has no such path. 502 because the upstream service, not the caller's
    request to Mill, is what failed; the message names the datastore and the path and never
    holds a credential."""

    code = "datastore_error"
    http_status = 502


class JobFailedError(MillError):
    code = "job_failed"
    http_status = 409


class NotSupportedError(MillError):
    code = "not_supported"
    http_status = 501


_BY_CODE: dict[str, type[MillError]] = {
    c.code: c
    for c in (
        MillError,
        UsageError,
        NotFoundError,
        ConflictError,
        AuthError,
        ServerUnavailableError,
        DatastoreError,
        JobFailedError,
        NotSupportedError,
    )
}


def error_from_envelope(envelope: dict[str, Any], status: int) -> MillError:
    """Rebuild the error a server answered with (used by the HTTP client)."""
    code = str(envelope.get("code") or "internal")
    message = str(envelope.get("message") or f"server answered HTTP {status}")
    hint = envelope.get("hint")
    details = envelope.get("details") or {}
    if code == "invalid_spec":
        issues = [
            SpecIssue(
                message=i.get("message", ""),
                field=i.get("field", ""),
                file=i.get("file"),
                line=i.get("line"),
                value=i.get("value"),
                has_value="value" in i,
                allowed=i.get("allowed"),
            )
            for i in details.get("issues", [])
        ]
        if issues:
            return SpecError(issues, hint)
        return SpecError([SpecIssue(message)], hint)
    cls = _BY_CODE.get(code, MillError)
    return cls(message, hint=hint, details=details)


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)
