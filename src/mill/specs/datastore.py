"""Datastore YAML (yaml-reference §14): azure_blob, azure_data_lake_gen2, s3 and local.

Azure's own fields are kept as they are; ``s3`` and ``local`` are Mill's. Credential values
may be given inline (the control plane moves them into the vault at once) or as a reference
to a vault secret, ``${{secrets.<name>}}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mill.errors import SpecError, SpecIssue

from .fields import OptionalText, TextMap, choice
from .problems import Problem, fail, from_validation_error, problem, to_issues
from .yamldoc import YamlDocument, load_yaml

__all__ = [
    "CREDENTIAL_FIELDS",
    "DATASTORE_TYPES",
    "SECRET_REFERENCE",
    "DatastoreSpec",
    "load_datastore",
    "parse_datastore",
]

DatastoreType = Literal["azure_blob", "azure_data_lake_gen2", "s3", "local"]
DATASTORE_TYPES: tuple[str, ...] = ("azure_blob", "azure_data_lake_gen2", "s3", "local")
_NOT_YET = {
    "azure_file": "Azure Files shares",
    "azure_data_lake_gen1": "Data Lake Gen1 stores (retired by Azure in 2024)",
}
_NAME = re.compile(r"^[A-Za-z0-9_]{1,255}$")
# ${{secrets.<name>}}: the whole value is a reference to a vault secret.
SECRET_REFERENCE = re.compile(r"^\$\{\{\s*secrets\.([A-Za-z0-9][A-Za-z0-9_.-]{0,126})\s*\}\}$")

# The credential forms of each type: the set of fields each form needs.
CREDENTIAL_FIELDS: dict[str, dict[str, tuple[str, ...]]] = {
    "azure_blob": {"account_key": ("account_key",), "sas_token": ("sas_token",)},
    "azure_data_lake_gen2": {
        "account_key": ("account_key",),
        "sas_token": ("sas_token",),
        "service_principal": ("tenant_id", "client_id", "client_secret"),
    },
    "s3": {"access_key": ("access_key_id", "secret_access_key")},
    "local": {},
}
# Fields of a service principal that are not secret but are accepted beside it.
_EXTRA_CREDENTIAL_FIELDS = ("authority_url", "resource_url")

_TYPE_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # type: (required, optional)
    "azure_blob": (("account_name", "container_name"), ("endpoint", "protocol", "account_url")),
    "azure_data_lake_gen2": (
        ("account_name", "filesystem"),
        ("endpoint", "protocol", "account_url"),
    ),
    "s3": (("bucket",), ("endpoint_url", "region")),
    "local": (("path",), ()),
}
_ALL_TYPE_FIELDS = sorted({f for req, opt in _TYPE_FIELDS.values() for f in (*req, *opt)})


class DatastoreSpec(BaseModel):
    """One datastore as its YAML file (or the API body) describes it."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_: OptionalText = Field(default=None, alias="$schema")
    name: str
    type: Annotated[DatastoreType, choice(DATASTORE_TYPES)]
    description: OptionalText = None
    tags: TextMap = Field(default_factory=dict)
    account_name: OptionalText = None
    container_name: OptionalText = None
    filesystem: OptionalText = None
    endpoint: OptionalText = None
    protocol: Annotated[
        Literal["https", "http", "wasbs", "wasb", "abfss", "abfs"] | None,
        choice(("https", "http", "wasbs", "wasb", "abfss", "abfs")),
    ] = None
    account_url: OptionalText = None
    bucket: OptionalText = None
    endpoint_url: OptionalText = None
    region: OptionalText = None
    path: OptionalText = None
    credentials: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _known_type(cls, data: Any) -> Any:
        if (
            isinstance(data, Mapping)
            and isinstance(data.get("type"), str)
            and data["type"] in _NOT_YET
        ):
            fail(
                problem(
                    f"{_NOT_YET[data['type']]} are not supported as datastores yet",
                    path=("type",),
                    value=data["type"],
                    allowed=", ".join(DATASTORE_TYPES),
                )
            )
        return data

    @model_validator(mode="after")
    def _check(self) -> DatastoreSpec:
        problems: list[Problem] = []
        if not _NAME.match(self.name):
            problems.append(
                problem(
                    "invalid datastore name",
                    path=("name",),
                    value=self.name,
                    allowed="1-255 letters, digits and '_' (Azure's rule)",
                )
            )
        required, optional = _TYPE_FIELDS[self.type]
        for field in required:
            if getattr(self, field) is None:
                problems.append(
                    problem(
                        f"required for a {self.type} datastore",
                        path=(field,),
                        allowed="a non-empty string",
                    )
                )
        for field in _ALL_TYPE_FIELDS:
            if field not in required and field not in optional and getattr(self, field) is not None:
                problems.append(
                    problem(
                        f"not a field of a {self.type} datastore",
                        path=(field,),
                        value=getattr(self, field),
                        allowed=", ".join((*required, *optional)) or "none",
                    )
                )
        if self.type == "local" and self.path is not None and not Path(self.path).is_absolute():
            problems.append(
                problem(
                    "a local datastore's path must be absolute",
                    path=("path",),
                    value=self.path,
                    allowed="an absolute folder path (the CLI makes relative ones absolute)",
                )
            )
        problems.extend(self._check_credentials())
        if problems:
            fail(*problems)
        return self

    def _check_credentials(self) -> list[Problem]:
        if not self.credentials:
            return []
        forms = CREDENTIAL_FIELDS[self.type]
        if not forms:
            return [
                problem(
                    f"a {self.type} datastore takes no credentials",
                    path=("credentials",),
                    allowed="no credentials field",
                )
            ]
        given = {k for k, v in self.credentials.items() if v not in (None, "")}
        match = [form for form, fields in forms.items() if given >= set(fields)]
        allowed = "; ".join(f"{form}: {', '.join(fields)}" for form, fields in forms.items())
        if len(match) != 1:
            return [
                problem(
                    "credentials must be exactly one of the forms"
                    if match
                    else "credentials do not match any form",
                    path=("credentials",),
                    value=sorted(given),
                    allowed=allowed,
                )
            ]
        known = set(forms[match[0]]) | set(_EXTRA_CREDENTIAL_FIELDS)
        problems = [
            problem(
                f"not a field of {match[0]} credentials",
                path=("credentials", key),
                allowed=", ".join(forms[match[0]]),
            )
            for key in sorted(given - known)
        ]
        for key in forms[match[0]]:
            value = self.credentials[key]
            if not isinstance(value, str):
                problems.append(
                    problem(
                        "a credential must be a string",
                        path=("credentials", key),
                        allowed="text, or ${{secrets.<name>}}",
                    )
                )
        return problems

    def credential_form(self) -> str | None:
        """``account_key``, ``sas_token``, ``service_principal``, ``access_key`` or None."""
        if not self.credentials:
            return None
        given = {k for k, v in self.credentials.items() if v not in (None, "")}
        for form, fields in CREDENTIAL_FIELDS[self.type].items():
            if given >= set(fields):
                return form
        return None

    def config(self) -> dict[str, Any]:
        """The type's own fields, without credentials (what the store keeps as ``config``)."""
        required, optional = _TYPE_FIELDS[self.type]
        return {f: getattr(self, f) for f in (*required, *optional) if getattr(self, f) is not None}


def parse_datastore(data: Mapping[str, Any], source: YamlDocument | None = None) -> DatastoreSpec:
    """Validate a datastore given as a mapping; ``source`` locates problems by file and line.

    Problems inside ``credentials`` never show the value given.
    """
    if not isinstance(data, Mapping):
        raise SpecError([SpecIssue("expected a mapping of datastore fields", value=data)])
    try:
        return DatastoreSpec.model_validate(data)
    except ValidationError as exc:
        problems = [_hide_credential_value(p) for p in from_validation_error(exc, DatastoreSpec)]
        raise SpecError(to_issues(problems, source)) from None


def load_datastore(path: Path, overrides: Sequence[str] = ()) -> DatastoreSpec:
    """A datastore YAML file with ``--set`` overrides; a local ``path`` becomes absolute."""
    from .overrides import apply_overrides

    doc = load_yaml(path)
    data = apply_overrides(doc.data, overrides) if overrides else dict(doc.data)
    if data.get("type") == "local" and isinstance(data.get("path"), str):
        data["path"] = str((doc.base_dir / Path(data["path"]).expanduser()).resolve())
    doc = YamlDocument(data, doc.file, doc.base_dir, doc.lines)
    return parse_datastore(data, doc)


def _hide_credential_value(found: Problem) -> Problem:
    if found.path[:1] == ("credentials",) and found.has_value:
        return Problem(
            found.message,
            path=found.path,
            value=None,
            has_value=False,
            allowed=found.allowed,
            issue=found.issue,
        )
    return found
