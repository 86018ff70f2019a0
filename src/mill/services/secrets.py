"""The workspace vault: secrets sealed at rest, shown as metadata only.

:func:`reveal` is the one function that returns a value; datastores and job launch call it.
Jobs and deployments refer to a secret from an environment variable,
``DB_PASSWORD: "${{secrets.db-password}}"`` (alone or inside a longer value); the stored
spec keeps the reference, and the value is filled in only when the process is launched.
No message raised here carries a value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from mill.domain.entities import SecretInfo
from mill.errors import ConflictError, NotFoundError, SpecError, SpecIssue
from mill.services.context import Context
from mill.services.formats import iso
from mill.storage.vault import secret_aad

__all__ = [
    "MAX_VALUE_BYTES",
    "check_references",
    "delete",
    "find_references",
    "list_secrets",
    "resolve_references",
    "reveal",
    "revision",
    "secret_environment",
    "set_secret",
    "show",
]

MAX_VALUE_BYTES = 64 * 1024
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,126}$")
_NAME_RULE = "letters, digits, '-', '_' and '.', starting with a letter or digit, at most 127"
_REFERENCE = re.compile(r"\$\{\{\s*secrets\.([^}]*?)\s*\}\}")
_MAX_DESCRIPTION = 1024


def set_secret(
    ctx: Context,
    workspace: str,
    name: str,
    value: str,
    description: str | None = None,
    managed_by: str | None = None,
) -> dict[str, Any]:
    """Create a secret or replace its value (the version goes up); answers its metadata."""
    _check_name(name)
    issues: list[SpecIssue] = []
    if not isinstance(value, str) or not value:
        issues.append(SpecIssue("a secret's value must be a non-empty string", field="value"))
    elif _utf8_size(value) is None:
        issues.append(SpecIssue("a secret's value must be valid Unicode text", field="value"))
    elif (_utf8_size(value) or 0) > MAX_VALUE_BYTES:
        issues.append(
            SpecIssue(f"a secret's value is at most {MAX_VALUE_BYTES} bytes", field="value")
        )
    for field, text in (("description", description), ("managed_by", managed_by)):
        if text is not None and (
            not isinstance(text, str) or len(text) > _MAX_DESCRIPTION or _utf8_size(text) is None
        ):
            issues.append(
                SpecIssue(f"must be text of at most {_MAX_DESCRIPTION} characters", field=field)
            )
    if issues:
        raise SpecError(issues)
    vault = ctx.vault
    ctx.store.get_workspace(workspace)  # an unknown workspace is a 404, not a bad spec
    info = ctx.store.put_secret(
        workspace,
        name,
        vault.seal(value, secret_aad(workspace, name)),
        vault.key_id,
        description=description,
        managed_by=managed_by,
    )
    return _read(info)


def show(ctx: Context, workspace: str, name: str) -> dict[str, Any]:
    """A secret's metadata (never its value)."""
    _check_name(name)
    info, _ = ctx.store.get_secret(workspace, name)
    return _read(info)


def revision(ctx: Context, workspace: str, name: str) -> str:
    """Changes whenever the value does, even across delete and re-create (a cache key)."""
    info, _ = ctx.store.get_secret(workspace, name)
    return f"{info.version}:{info.created_at!r}:{info.updated_at!r}:{info.key_id}"


def list_secrets(ctx: Context, workspace: str) -> list[dict[str, Any]]:
    return [_read(info) for info in ctx.store.list_secrets(workspace)]


def delete(ctx: Context, workspace: str, name: str, *, force: bool = False) -> None:
    """Delete a secret; one that something manages (a datastore's credentials) needs force."""
    info = show(ctx, workspace, name)
    owner = info["managed_by"]
    if owner and not force:
        raise ConflictError(
            f"secret {name!r} is managed by {owner}; deleting it would break that",
            hint="delete or update its owner instead, or force the delete (--force)",
            details={"secret": name, "managed_by": owner},
        )
    ctx.store.delete_secret(workspace, name)


def reveal(ctx: Context, workspace: str, name: str) -> str:
    """The secret's value. Internal: never returned by the API nor printed."""
    _check_name(name)
    info, blob = ctx.store.get_secret(workspace, name)
    return ctx.vault.open(blob, secret_aad(workspace, name), key_id=info.key_id)


def find_references(env: Mapping[str, str]) -> list[str]:
    """The secret names ``env``'s values refer to, each once, in order of appearance."""
    names: dict[str, None] = {}
    for value in env.values():
        for match in _REFERENCE.finditer(str(value)):
            names.setdefault(match.group(1), None)
    return list(names)


def check_references(
    ctx: Context, workspace: str, env: Mapping[str, str], *, field: str = "environment_variables"
) -> None:
    """At submit: every referenced secret exists and opens with this server's key."""
    if not find_references(env):
        return
    issues: list[SpecIssue] = []
    known: dict[str, SecretInfo] = {s.name: s for s in ctx.store.list_secrets(workspace)}
    for variable, value in env.items():
        for name in find_references({variable: value}):
            where = f"{field}.{variable}"
            issue = _reference_issue(name, where)
            if issue is None and name not in known:
                issue = SpecIssue(
                    f"unknown secret {name!r} in workspace {workspace!r}",
                    field=where,
                    allowed=", ".join(sorted(known)) or "no secrets yet (mill secret set)",
                )
            elif issue is None and known[name].key_id != ctx.vault.key_id:
                issue = SpecIssue(
                    f"secret {name!r} was sealed with vault key {known[name].key_id}, "
                    f"not this server's key {ctx.vault.key_id}",
                    field=where,
                )
            if issue is not None:
                issues.append(issue)
    if issues:
        raise SpecError(issues, hint="mill secret list shows the workspace's secrets")


def resolve_references(ctx: Context, workspace: str, env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with every ``${{secrets.<name>}}`` replaced by the secret's value."""
    resolved: dict[str, str] = {}
    for variable, value in env.items():
        text = str(value)
        names = find_references({variable: text})
        for name in names:
            issue = _reference_issue(name, f"environment_variables.{variable}")
            if issue is not None:
                raise SpecError([issue])
        if names:
            values = {n: _reveal_for(ctx, workspace, n, variable) for n in names}
            text = _fill(text, values)
        resolved[str(variable)] = text
    return resolved


def secret_environment(ctx: Context, workspace: str, env: Mapping[str, str]) -> dict[str, str]:
    """Only the variables of ``env`` that refer to secrets, resolved (for the runner to pass
    to the process directly, never written into a plan file)."""
    refers = {str(k): str(v) for k, v in env.items() if _REFERENCE.search(str(v))}
    return resolve_references(ctx, workspace, refers)


def _utf8_size(text: str) -> int | None:
    """The UTF-8 length, or None for text that has none (lone surrogates from JSON)."""
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        return None


def _fill(text: str, values: Mapping[str, str]) -> str:
    return _REFERENCE.sub(lambda m: values[m.group(1)], text)


def _reveal_for(ctx: Context, workspace: str, name: str, variable: str) -> str:
    try:
        return reveal(ctx, workspace, name)
    except NotFoundError:
        raise SpecError.one(
            f"unknown secret {name!r} in workspace {workspace!r}",
            field=f"environment_variables.{variable}",
            hint="mill secret set --name " + name,
        ) from None


def _reference_issue(name: str, where: str) -> SpecIssue | None:
    if _NAME.match(name):
        return None
    return SpecIssue(
        f"'${{{{secrets.{name}}}}}' does not name a secret", field=where, allowed=_NAME_RULE
    )


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise SpecError.one("invalid secret name", field="name", value=name, allowed=_NAME_RULE)


def _read(info: SecretInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "description": info.description,
        "managed_by": info.managed_by,
        "version": info.version,
        "key_id": info.key_id,
        "creation_context": {
            "created_at": iso(info.created_at),
            "last_modified_at": iso(info.updated_at),
        },
    }
