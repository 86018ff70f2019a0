"""The model registry: named, versioned models in three formats, with their lineage.

Every version's files are the registry's own immutable copy, on the workspace's
``workspaceblobstore`` under ``mlflow-artifacts/registry/<name>/<version>/`` (so the MLflow
artifact proxy serves them to ``models:/`` URIs too). Where they came from is recorded as
``source``; a model made from a job's output also records the job and the job's data inputs
(``lineage``).

Sources: a local file or folder (the CLI uploads it to ``registry/.uploads/<id>/`` first and
it is moved into place), ``azureml://jobs/<job>/outputs/<output>/paths/<p>`` (``artifacts``
is the job's MLflow artifacts and its ``./outputs``; ``paths/<name>`` finds a model the job
logged under that name, as a run artifact (MLflow 2.x) or a LoggedModel (3.x)),
``runs:/<run-id>/<path>``, a datastore path, a storage URI or an https URL.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from pathlib import Path, PurePosixPath
from typing import Any

from mill import specs
from mill.domain.entities import ModelVersion
from mill.errors import MillError, NotFoundError, SpecError, UsageError
from mill.services import data, datastores
from mill.services.context import Context
from mill.services.formats import iso
from mill.services.launch import ARTIFACTS, default_output_uri, resolve_uri
from mill.services.workspaces import DEFAULT_DATASTORE
from mill.specs.model_formats import inspect_model
from mill.store.logged_models import LoggedModelStore

__all__ = [
    "archive",
    "create",
    "list_models",
    "models_of_job",
    "new_upload",
    "read",
    "resolve",
    "show",
    "update",
]

REGISTRY = "mlflow-artifacts/registry"
_UPLOADS = f"{REGISTRY}/.uploads"
_MLFLOW_ARTIFACTS = "mlflow-artifacts:/"


def new_upload(ctx: Context, workspace: str, filename: str) -> dict[str, str]:
    """Where the CLI uploads a local model before ``create`` moves it into the registry."""
    name = PurePosixPath(filename.replace("\\", "/")).name
    if not name or name in (".", ".."):
        raise UsageError(f"cannot upload {filename!r}: it has no file or folder name")
    relative = f"{_UPLOADS}/{uuid.uuid4().hex}/{name}"
    return {
        "datastore": DEFAULT_DATASTORE,
        "path": relative,
        "uri": f"azureml://datastores/{DEFAULT_DATASTORE}/paths/{relative}",
    }


def create(
    ctx: Context,
    workspace: str,
    body: dict[str, Any],
    *,
    validate_only: bool = False,
    run_id: str | None = None,
    lineage: dict[str, Any] | None = None,
    source: dict[str, Any] | None = None,
) -> ModelVersion:
    """Register a new version (the next number unless given); nothing is kept on failure.

    ``run_id`` names the MLflow run the files came from when ``path`` does not say it
    (MLflow's create-model-version); a job's run brings the job's lineage. A model the
    platform derives from another (``services.conversion``) states its own ``lineage`` and
    ``source`` instead of the ones its path would give.
    """
    given_source = body.pop("source", None) if isinstance(body, dict) else None
    spec = specs.parse_model(body)
    ctx.store.get_workspace(workspace)
    if spec.is_local:
        raise SpecError.one(
            "a local path must be uploaded before the model is created (the CLI does this)",
            field="path",
            value=spec.path,
            allowed=specs.model.PATH_FORMS,
        )
    existing = ctx.store.model_version_numbers(workspace, spec.name)
    version = spec.version or str(max((int(v) for v in existing if v.isdigit()), default=0) + 1)
    if version in existing:
        raise SpecError.one(
            f"model {spec.name!r} version {version!r} already exists; versions are immutable",
            field="version",
            value=version,
            allowed="a new version, or leave version out to get the next one",
        )
    located = _locate_source(ctx, workspace, spec)
    if run_id and located.run_id is None:
        located.run_id = run_id
        if ctx.store.has_job(workspace, run_id):
            job = ctx.store.get_job(workspace, run_id)
            located.lineage = _job_lineage(job.name, job.spec, job.experiment_name)
    if isinstance(given_source, dict) and given_source.get("kind") == "local_upload":
        located.source = {
            "kind": "local_upload",
            "local_path": str(given_source.get("local_path", ""))[:4096],
        }
    if lineage is not None:
        located.lineage = lineage
    if source is not None:
        located.source = source
    staging_root = _registry_root(ctx, workspace) / ".staging"
    staging_root.mkdir(exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=staging_root))
    try:
        local = located.fetch(staging)
        facts = inspect_model(spec.type, local)  # SpecError for a wrong layout
        properties = dict(spec.properties)
        if spec.stage:
            properties.setdefault("stage", spec.stage)
        target_dir = _registry_root(ctx, workspace) / spec.name / version
        if target_dir.exists():
            # Another version's files live there (a model renamed since), or a crash left
            # them: never delete, use a folder of this version's own.
            target_dir = target_dir.with_name(f"{version}.{uuid.uuid4().hex[:8]}")
        folder = f"{spec.name}/{target_dir.name}"
        model = ModelVersion(
            workspace=workspace,
            name=spec.name,
            version=version,
            type=spec.type,
            path=_registry_uri(f"{folder}/{local.name}", local.is_dir()),
            description=spec.description,
            tags=dict(spec.tags),
            properties=properties,
            flavors=facts.summary,
            source=located.source,
            lineage=located.lineage,
            run_id=located.run_id,
            size_bytes=facts.size_bytes,
            file_count=facts.file_count,
            created_at=time.time(),
        )
        if validate_only:
            return model
        target_dir.mkdir(parents=True)
        local.rename(target_dir / local.name)
        try:
            stored = ctx.store.add_model_version(model)
        except BaseException:
            shutil.rmtree(target_dir, ignore_errors=True)
            raise
        return stored
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def show(
    ctx: Context, workspace: str, name: str, version: str | None, label: str | None = None
) -> dict[str, Any]:
    return read(resolve(ctx, workspace, name, version, label))


def resolve(
    ctx: Context, workspace: str, name: str, version: str | None, label: str | None = None
) -> ModelVersion:
    """A version by number, ``latest`` (the newest not archived) or an alias (MLflow's)."""
    if version is not None:
        return ctx.store.get_model_version(workspace, name, version)
    if label in (None, "latest"):
        versions = ctx.store.list_model_versions(workspace, name)
        if not versions:
            raise NotFoundError(
                f"model {name!r} has no version to use in workspace {workspace!r}",
                hint=f"register one with: mill model create --name {name} --path <path>",
            )
        return versions[-1]
    aliases = ctx.store.get_registered_model(workspace, name).aliases
    if label not in aliases:
        raise NotFoundError(
            f"model {name!r} has no label or alias {label!r}",
            details={"known": ["latest", *aliases]},
        )
    return ctx.store.get_model_version(workspace, name, aliases[label])


def list_models(
    ctx: Context, workspace: str, name: str | None = None, include_archived: bool = False
) -> list[dict[str, Any]]:
    """Every version of ``name``, newest first; without a name, each model's latest."""
    versions = ctx.store.list_model_versions(workspace, name, include_archived)
    if name is not None:
        if not versions and not ctx.store.model_version_numbers(workspace, name):
            raise NotFoundError(f"model {name!r} not found in workspace {workspace!r}")
        return [read(v) for v in reversed(versions)]
    latest: dict[str, ModelVersion] = {}
    for v in versions:
        latest[v.name] = v
    return [read(v) for v in sorted(latest.values(), key=lambda v: v.name)]


def update(
    ctx: Context, workspace: str, name: str, version: str, fields: dict[str, Any]
) -> dict[str, Any]:
    """Change description, tags, properties or stage; files and type never change."""
    fixed = sorted(set(fields) - {"description", "tags", "properties", "stage", "name", "version"})
    if fixed:
        raise UsageError(
            f"cannot change {', '.join(fixed)} of model {name!r} version {version!r}; "
            "versions are immutable",
            hint="register a new version instead",
        )

    def change(model: ModelVersion) -> None:
        if "description" in fields:
            model.description = fields["description"]
        if "tags" in fields:
            model.tags = {str(k): str(v) for k, v in (fields["tags"] or {}).items()}
        if "properties" in fields:
            model.properties = {str(k): str(v) for k, v in (fields["properties"] or {}).items()}
        if fields.get("stage"):
            model.properties["stage"] = str(fields["stage"])

    return read(ctx.store.update_model_version(workspace, name, version, change))


def archive(
    ctx: Context, workspace: str, name: str, version: str | None, archived: bool = True
) -> list[dict[str, Any]]:
    """Archive (or restore) one version, or every version when none is given."""
    versions = [version] if version else ctx.store.model_version_numbers(workspace, name)
    if not versions:
        raise NotFoundError(f"model {name!r} not found in workspace {workspace!r}")

    def change(model: ModelVersion) -> None:
        model.archived = archived

    return [read(ctx.store.update_model_version(workspace, name, v, change)) for v in versions]


def models_of_job(ctx: Context, workspace: str, job: str) -> list[dict[str, str]]:
    """The model versions registered from a job's outputs (``job show`` lists them)."""
    return [
        {"name": v.name, "version": v.version, "id": f"azureml:{v.name}:{v.version}"}
        for v in ctx.store.model_versions_of_run(workspace, job)  # a job's run id is its name
        if (v.lineage or {}).get("job") == job
    ]


# -- where a version's files come from -------------------------------------------------


class _Located:
    """A resolved source: how to fetch its files, and what to record about it."""

    def __init__(
        self,
        uri: str,
        source: dict[str, Any],
        lineage: dict[str, Any] | None = None,
        run_id: str | None = None,
        *,
        move: Path | None = None,
    ) -> None:
        self.uri = uri
        self.source = source
        self.lineage = lineage
        self.run_id = run_id
        self._move = move  # a local upload: moved, not copied
        self._ctx: Context | None = None
        self._workspace = ""

    def bind(self, ctx: Context, workspace: str) -> _Located:
        self._ctx, self._workspace = ctx, workspace
        return self

    def fetch(self, staging: Path) -> Path:
        """The files as a local file or folder inside ``staging``."""
        assert self._ctx is not None
        if self._move is not None:  # a local upload: moved (never reused), its folder dropped
            target = staging / self._move.name
            self._move.rename(target)
            shutil.rmtree(self._move.parent, ignore_errors=True)
            return target
        fs, relative = datastores.locate(self._ctx, self._workspace, self.uri)
        stats = fs.stat(relative)
        if stats.kind == "missing":
            raise SpecError.one(
                f"nothing found at {self.uri}",
                field="path",
                value=self.uri,
                allowed="an existing file or folder",
            )
        name = relative.rstrip("/").rsplit("/", 1)[-1] or "model"
        target = staging / name
        fs.get(relative, target)
        return target


def _locate_source(ctx: Context, workspace: str, spec: specs.ModelSpec) -> _Located:
    path = spec.path.strip()
    run = spec.run_reference()
    if run is not None:
        return _from_run(ctx, workspace, run[0], run[1], path).bind(ctx, workspace)
    job_output = specs.references.parse_job_output_uri(path)
    if job_output is not None:
        job_name, output, inner = job_output
        return _from_job(ctx, workspace, job_name, output, inner, path).bind(ctx, workspace)
    parsed = specs.parse_datastore_uri(path)
    if parsed is not None and parsed[0] == DEFAULT_DATASTORE and parsed[1].startswith(_UPLOADS):
        local = resolve_uri(ctx, workspace, path)
        if not local.exists():
            raise SpecError.one("the uploaded model files are gone", field="path", value=path)
        return _Located(path, {"kind": "local_upload"}, move=local).bind(ctx, workspace)
    kind = specs.classify_path(path)
    if kind not in ("datastore", "cloud", "http"):
        raise SpecError.one(
            "not a model path", field="path", value=path, allowed=specs.model.PATH_FORMS
        )
    return _Located(path, {"kind": "uri", "uri": path}).bind(ctx, workspace)


def _from_job(
    ctx: Context, workspace: str, job_name: str, output: str, inner: str, original: str
) -> _Located:
    try:
        job = ctx.store.get_job(workspace, job_name)
    except NotFoundError as exc:
        raise SpecError.one(exc.message, field="path", value=original) from None
    lineage = _job_lineage(job.name, job.spec, job.experiment_name)
    source = {"kind": "job_output", "job": job.name, "output": output, "path": inner}
    if output != ARTIFACTS:
        uri = data.job_output_uri(ctx, workspace, original)
        return _Located(uri, source, lineage, job.name)
    # The job's artifacts: a model it logged with MLflow under that name, else its files.
    logged = _logged_model(ctx, workspace, job.name, inner)
    if logged is not None:
        return _Located(logged, source, lineage, job.name)
    base = default_output_uri(job.name, ARTIFACTS)
    return _Located(base + inner, source, lineage, job.name)


def _from_run(ctx: Context, workspace: str, run_id: str, inner: str, original: str) -> _Located:
    try:
        run = ctx.tracking.get_run(run_id, workspace)
    except MillError as exc:
        raise SpecError.one(
            f"run {run_id!r} not found: {exc.message}", field="path", value=original
        ) from None
    source = {"kind": "run", "run_id": run_id, "path": inner}
    lineage: dict[str, Any] | None = {"run": run_id}
    if ctx.store.has_job(workspace, run_id):  # every job is a run: keep its lineage
        job = ctx.store.get_job(workspace, run_id)
        lineage = _job_lineage(job.name, job.spec, job.experiment_name)
    logged = _logged_model(ctx, workspace, run_id, inner)
    if logged is not None:
        return _Located(logged, source, lineage, run_id)
    artifact_uri = str(run.get("info", run).get("artifact_uri", ""))
    return _Located(_artifacts_uri(artifact_uri, inner), source, lineage, run_id)


def _logged_model(ctx: Context, workspace: str, run_id: str, name: str) -> str | None:
    """The files of the MLflow model ``name`` the run logged: a LoggedModel, or run artifacts."""
    first = name.strip("/").split("/", 1)[0]
    if not first:
        return None
    found = LoggedModelStore(ctx.tracking).find_by_run(workspace, run_id, first)
    if found is not None:
        rest = name.strip("/")[len(first) :]
        return _artifacts_uri(str(found["artifact_uri"]), rest)
    try:
        run = ctx.tracking.get_run(run_id, workspace)
    except MillError:
        return None
    artifact_uri = str(run.get("info", run).get("artifact_uri", ""))
    candidate = _artifacts_uri(artifact_uri, name)
    try:
        fs, relative = datastores.locate(ctx, workspace, candidate)
        if fs.stat(relative).kind != "missing":
            return candidate
    except MillError:
        pass
    return None


def _artifacts_uri(mlflow_uri: str, inner: str) -> str:
    """``mlflow-artifacts:/<p>`` + ``inner`` -> the workspace blobstore URI of those files."""
    if not mlflow_uri.startswith(_MLFLOW_ARTIFACTS):
        raise UsageError(f"cannot read MLflow artifacts at {mlflow_uri!r}")
    rest = mlflow_uri[len(_MLFLOW_ARTIFACTS) :].strip("/")
    joined = "/".join(p for p in (rest, inner.strip("/")) if p)
    return f"azureml://datastores/{DEFAULT_DATASTORE}/paths/mlflow-artifacts/{joined}"


def _job_lineage(job: str, spec: dict[str, Any], experiment: str) -> dict[str, Any]:
    inputs = {
        name: {k: v for k, v in item.items() if k in ("type", "path", "asset", "mode")}
        for name, item in (spec.get("inputs") or {}).items()
        if item.get("path") is not None
    }
    return {"job": job, "experiment": experiment, "inputs": inputs}


def _registry_root(ctx: Context, workspace: str) -> Path:
    root = resolve_uri(ctx, workspace, f"azureml://datastores/{DEFAULT_DATASTORE}/paths/{REGISTRY}")
    root.mkdir(parents=True, exist_ok=True)
    return root


def _registry_uri(relative: str, folder: bool) -> str:
    uri = f"azureml://datastores/{DEFAULT_DATASTORE}/paths/{REGISTRY}/{relative}"
    return uri + "/" if folder else uri


def read(model: ModelVersion) -> dict[str, Any]:
    """As ``az ml model show`` prints it, plus format facts, lineage and source."""
    return {
        "name": model.name,
        "version": model.version,
        "type": model.type,
        "path": model.path,
        "description": model.description,
        "tags": model.tags,
        "properties": model.properties,
        "stage": model.properties.get("stage"),
        "flavors": (model.flavors or {}).get("flavors"),
        "format": model.flavors,
        "source": model.source,
        "lineage": model.lineage,
        "job_name": (model.lineage or {}).get("job"),
        "run_id": model.run_id,
        "size_bytes": model.size_bytes,
        "file_count": model.file_count,
        "archived": model.archived,
        "creation_context": {
            "created_at": iso(model.created_at),
            "last_modified_at": iso(model.updated_at),
        },
        "id": f"azureml:{model.name}:{model.version}",
    }
