"""Environment assets and how a job's ``environment`` becomes something to build.

A definition is portable: conda content is inline and a Docker build context is a code
snapshot, so the stored asset never depends on a user's local files.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from mill import envs, specs
from mill.domain.entities import EnvironmentAsset
from mill.errors import NotFoundError, SpecError
from mill.services.context import Context
from mill.services.formats import iso
from mill.services.uploads import snapshot_files

__all__ = [
    "archive",
    "create",
    "definition_of",
    "list_assets",
    "resolve_asset",
    "resolve_for_job",
    "show",
    "update",
]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
_DEFINITION_FIELDS = ("image", "conda_file", "build", "inference_config", "os_type", "python")
HOST_INTERPRETER_NOTE = (
    "no environment given: the job runs in the control plane's Python interpreter as is"
)


def create(ctx: Context, workspace: str, body: dict[str, Any]) -> dict[str, Any]:
    """Register a new version of an environment (versions are immutable)."""
    name = str(body.get("name") or "")
    if not _NAME.match(name):
        raise SpecError.one(
            "invalid environment name",
            field="name",
            value=name,
            allowed="letters, digits, '.', '-' and '_', starting with a letter or digit",
        )
    spec = _validated(body)
    definition = {k: spec[k] for k in _DEFINITION_FIELDS if spec.get(k) is not None}
    resolved = _resolve(ctx, workspace, definition)  # bad conda files etc. fail here, not later
    existing = ctx.store.list_environments(workspace, name, include_archived=True)
    version = str(body["version"]) if body.get("version") not in (None, "") else _next(existing)
    asset = ctx.store.add_environment(
        EnvironmentAsset(
            workspace=workspace,
            name=name,
            version=version,
            definition=definition,
            description=spec.get("description"),
            tags=dict(spec.get("tags") or {}),
        )
    )
    return _read(ctx, asset, resolved)


def show(
    ctx: Context, workspace: str, name: str, version: str | None, label: str | None
) -> dict[str, Any]:
    asset = _find(ctx, workspace, name, version, label)
    return _read(ctx, asset, _resolve(ctx, workspace, asset.definition))


def list_assets(
    ctx: Context, workspace: str, name: str | None = None, archived: bool = False
) -> list[dict[str, Any]]:
    """Every version of ``name``, or the latest version of each environment."""
    assets = ctx.store.list_environments(workspace, name, include_archived=archived)
    if name is None:
        latest: dict[str, EnvironmentAsset] = {}
        for asset in assets:
            latest[asset.name] = asset
        assets = list(latest.values())
    return [_summary(a) for a in reversed(assets)]


def update(
    ctx: Context, workspace: str, name: str, version: str, body: dict[str, Any]
) -> dict[str, Any]:
    """Only description and tags change; what an environment holds is immutable."""
    immutable = sorted(set(body) - {"description", "tags", "name", "version"})
    if immutable:
        raise SpecError.one(
            "an environment version cannot change what it holds",
            field=immutable[0],
            allowed="description, tags (create a new version for anything else)",
        )

    def change(env: EnvironmentAsset) -> None:
        if "description" in body:
            env.description = body["description"]
        if "tags" in body:
            env.tags = {str(k): str(v) for k, v in (body["tags"] or {}).items()}

    ctx.store.update_environment(workspace, name, version, change)
    return show(ctx, workspace, name, version, None)


def archive(
    ctx: Context, workspace: str, name: str, version: str | None, archived: bool = True
) -> None:
    versions = [
        a.version for a in ctx.store.list_environments(workspace, name, include_archived=True)
    ]
    if not versions:
        raise NotFoundError(f"environment {name!r} not found in workspace {workspace!r}")
    if version is not None and version not in versions:
        raise NotFoundError(
            f"environment {name!r} has no version {version!r}; versions: {', '.join(versions)}"
        )

    def change(env: EnvironmentAsset) -> None:
        env.archived = archived

    for v in [version] if version is not None else versions:
        ctx.store.update_environment(workspace, name, v, change)


def resolve_for_job(
    ctx: Context, workspace: str, environment: str | dict[str, Any] | None
) -> dict[str, Any]:
    """What a job's ``environment`` means: its definition, resolved spec and cache key.

    Raises a clear error at submit time for anything that could not be built.
    """
    if environment is None:
        return {"reference": None, "kind": "host", "notes": [HOST_INTERPRETER_NOTE]}
    if isinstance(environment, dict):
        reference: Any = "inline"
        definition = {
            k: environment[k] for k in _DEFINITION_FIELDS if environment.get(k) is not None
        }
        _check_portable(definition)
    else:
        reference = environment
        curated = envs.curated_name(environment)
        asset = None if curated else _asset_for_reference(ctx, workspace, environment)
        if asset is not None:
            definition = asset.definition
        elif curated:
            definition = {"curated": curated}
        else:
            raise SpecError.one(
                "unknown environment",
                field="environment",
                value=environment,
                allowed=", ".join(_known(ctx, workspace)) or "none registered yet",
                hint="register it with: mill environment create --file env.yml",
            )
    resolved = _resolve(ctx, workspace, definition)
    key = envs.environment_key(resolved)
    return {
        "reference": reference,
        "kind": resolved.kind,
        "definition": definition,
        "resolved": resolved.model_dump(mode="json"),
        "key": key,
        "notes": list(resolved.notes),
    }


def resolve_asset(
    ctx: Context, workspace: str, name: str, version: str | None, label: str | None
) -> tuple[str, envs.ResolvedEnvironment]:
    """A registered environment's version and resolved spec (one lookup, one resolution)."""
    asset = _find(ctx, workspace, name, version, label)
    return asset.version, _resolve(ctx, workspace, asset.definition)


def definition_of(
    ctx: Context, workspace: str, definition: dict[str, Any]
) -> envs.EnvironmentDefinition:
    """The builder's input: conda content inline, a build snapshot materialised on disk."""
    build = definition.get("build") or {}
    context_dir = None
    if build:
        context_dir = _materialise(ctx, workspace, str(build["path"]))
    conda = definition.get("conda_file")
    python = definition.get("python") or {}
    return envs.EnvironmentDefinition(
        user_managed=bool(python.get("user_managed_dependencies")),
        python_path=python.get("interpreter_path") or (sys.executable if python else None),
        image=definition.get("image"),
        conda=conda if isinstance(conda, dict) else None,
        conda_source="conda_file",
        build_context=context_dir,
        dockerfile_path=build.get("dockerfile_path") or "Dockerfile",
        curated=definition.get("curated"),
    )


def _resolve(ctx: Context, workspace: str, definition: dict[str, Any]) -> envs.ResolvedEnvironment:
    return envs.resolve(definition_of(ctx, workspace, definition))


def _materialise(ctx: Context, workspace: str, reference: str) -> Path:
    """A build context snapshot as a folder (kept by digest, written once)."""
    if specs.classify_path(reference) != "snapshot":
        raise SpecError.one(
            "a local build context must be uploaded before it is sent (the CLI does this)",
            field="build.path",
            value=reference,
            allowed="snapshot:<sha256>",
        )
    digest = reference.split(":", 1)[1]
    target = ctx.workspace_root(workspace) / "contexts" / digest
    if target.is_dir():
        return target
    return ctx.blobs(workspace).materialise(snapshot_files(ctx, workspace, digest), target)


def _check_portable(definition: dict[str, Any]) -> None:
    conda = definition.get("conda_file")
    if isinstance(conda, str):
        raise SpecError.one(
            "a conda file must be sent as its content (the CLI does this)",
            field="environment.conda_file",
            value=conda,
            allowed="the conda YAML as a mapping",
        )


def _validated(body: dict[str, Any]) -> dict[str, Any]:
    spec = {k: v for k, v in body.items() if k not in ("name", "version")}
    parsed = specs.parse_command_job({"command": "true", "environment": spec}).environment
    if not isinstance(parsed, dict):
        raise SpecError.one("an environment needs image, conda_file or build", field="environment")
    _check_portable(parsed)
    return parsed


def _find(
    ctx: Context, workspace: str, name: str, version: str | None, label: str | None
) -> EnvironmentAsset:
    assets = ctx.store.list_environments(workspace, name, include_archived=version is not None)
    if not assets:
        raise NotFoundError(f"environment {name!r} not found in workspace {workspace!r}")
    if version is not None:
        for asset in assets:
            if asset.version == version:
                return asset
        known = ", ".join(a.version for a in assets)
        raise NotFoundError(f"environment {name!r} has no version {version!r}; versions: {known}")
    if label not in (None, "latest"):
        raise SpecError.one("unknown label", field="label", value=label, allowed="latest")
    return assets[-1]


def _asset_for_reference(ctx: Context, workspace: str, reference: str) -> EnvironmentAsset | None:
    ref = specs.parse_asset_reference(reference)
    if ref is None or ref.registry is not None:
        return None
    try:
        return _find(ctx, workspace, ref.name, ref.version, ref.label)
    except NotFoundError:
        return None


def _known(ctx: Context, workspace: str) -> list[str]:
    names = sorted({f"azureml:{a.name}@latest" for a in ctx.store.list_environments(workspace)})
    return names + [f"azureml:AzureML-{c['name']}@latest" for c in envs.list_curated()]


def _next(existing: list[EnvironmentAsset]) -> str:
    numbers = [int(a.version) for a in existing if a.version.isdigit()]
    return str(max(numbers, default=0) + 1)


def _summary(asset: EnvironmentAsset) -> dict[str, Any]:
    return {
        "name": asset.name,
        "version": asset.version,
        "description": asset.description,
        "tags": asset.tags,
        "image": asset.definition.get("image"),
        "archived": asset.archived,
        "creation_context": {"created_at": iso(asset.created_at)},
    }


def _read(
    ctx: Context, asset: EnvironmentAsset, resolved: envs.ResolvedEnvironment
) -> dict[str, Any]:
    data = _summary(asset)
    data.update(
        {
            "conda_file": asset.definition.get("conda_file"),
            "build": asset.definition.get("build"),
            "inference_config": asset.definition.get("inference_config"),
            "os_type": asset.definition.get("os_type", "linux"),
            "id": f"azureml:{asset.name}:{asset.version}",
            # Mill's own fields
            "key": envs.environment_key(resolved),
            "python_version": resolved.python_version,
            "requirements": list(resolved.requirements),
            "notes": list(resolved.notes),
        }
    )
    return data
