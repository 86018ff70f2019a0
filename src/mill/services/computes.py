"""Compute targets: ``local`` always exists; users name more, each with its own limit."""

from __future__ import annotations

import os
import re
from typing import Any

from mill.domain.entities import Compute
from mill.errors import NotFoundError, NotSupportedError, SpecError
from mill.services.context import Context
from mill.services.formats import iso

__all__ = ["BUILTIN", "create", "delete", "list_all", "resolve", "show"]

BUILTIN = "local"
# azureml:serverless (Azure's "no named cluster") runs on the built-in local compute.
_ALIASES = {None: BUILTIN, "": BUILTIN, "serverless": BUILTIN, BUILTIN: BUILTIN}
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,31}$")
_TYPES = ("local",)


def builtin_max_instances() -> int:
    return max(4, os.cpu_count() or 1)


def _builtin(workspace: str) -> Compute:
    return Compute(
        workspace=workspace,
        name=BUILTIN,
        type="local",
        max_instances=builtin_max_instances(),
        description="Processes on the control plane's machine (also used for azureml:serverless)",
    )


def create(
    ctx: Context,
    workspace: str,
    name: str,
    type_: str = "local",
    max_instances: int = 1,
    description: str | None = None,
) -> dict[str, Any]:
    if not _NAME.match(name) or name in _ALIASES:
        raise SpecError.one(
            "invalid compute name",
            field="name",
            value=name,
            allowed="2-32 letters, digits or '-', starting with a letter; "
            "not 'local' or 'serverless'",
        )
    if type_ not in _TYPES:
        if type_ in ("amlcompute", "computeinstance", "kubernetes", "virtualmachine", "ray"):
            raise NotSupportedError(
                f"compute type {type_!r} is not available in this version; only 'local' is",
                hint="a Ray runner is planned; local computes run jobs as processes here",
            )
        raise SpecError.one("unknown compute type", field="type", value=type_, allowed="local")
    if max_instances < 1:
        raise SpecError.one(
            "must be at least 1",
            field="max_instances",
            value=max_instances,
            allowed="an integer >= 1",
        )
    compute = ctx.store.add_compute(
        Compute(
            workspace=workspace,
            name=name,
            type=type_,
            max_instances=max_instances,
            description=description,
        )
    )
    return _read(compute)


def list_all(ctx: Context, workspace: str) -> list[dict[str, Any]]:
    return [_read(c) for c in _computes(ctx, workspace)]


def show(ctx: Context, workspace: str, name: str) -> dict[str, Any]:
    return _read(resolve(ctx, workspace, name))


def delete(ctx: Context, workspace: str, name: str) -> None:
    if name in _ALIASES:
        raise SpecError.one("the built-in compute cannot be deleted", field="name", value=name)
    ctx.store.delete_compute(workspace, name)


def resolve(ctx: Context, workspace: str, name: str | None) -> Compute:
    """The compute a job names (``azureml:`` or not); an error listing the known ones if none."""
    key = name[len("azureml:") :] if name and name.startswith("azureml:") else name
    if key in _ALIASES:
        return _builtin(workspace)
    computes = _computes(ctx, workspace)
    for compute in computes:
        if compute.name == key:
            return compute
    known = ", ".join(c.name for c in computes)
    raise NotFoundError(
        f"compute {key!r} not found in workspace {workspace!r}; known computes: {known}",
        hint=f"create it with: mill compute create --name {key} --type local --max-instances 2",
        details={"field": "compute", "value": name, "known": [c.name for c in computes]},
    )


def _computes(ctx: Context, workspace: str) -> list[Compute]:
    return [_builtin(workspace), *ctx.store.list_computes(workspace)]


def _read(compute: Compute) -> dict[str, Any]:
    return {
        "name": compute.name,
        "type": compute.type,
        "max_instances": compute.max_instances,
        "description": compute.description,
        "provisioning_state": "Succeeded",
        "creation_context": {"created_at": iso(compute.created_at or None)},
    }
