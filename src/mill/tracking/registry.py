"""The MLflow model registry REST API (``/registered-models/*``, ``/model-versions/*``).

It is Mill's own registry (:mod:`mill.services.models`) in MLflow's words: a version the
client registers is one ``mill model show`` lists, and the other way round. What MLflow has
and Mill's registry does not is kept in a version's properties: the client's ``source``
(``mlflow.source``), the LoggedModel id (``mlflow.model_id``) and the stage (``stage``).

A version's files are the registry's own copy under ``mlflow-artifacts/registry/`` on the
workspace blobstore, so its download URI is an ``mlflow-artifacts:/registry/...`` URI the
client fetches through the artifact proxy. Page tokens are offsets.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from typing import Any

from mill import specs
from mill.domain.entities import ModelVersion, RegisteredModel
from mill.errors import MillError, NotFoundError, SpecError, UsageError
from mill.services import datastores
from mill.services import models as registry
from mill.services.context import Context
from mill.services.launch import resolve_uri
from mill.services.workspaces import DEFAULT_DATASTORE
from mill.store.logged_models import LoggedModelStore
from mill.store.tracking import SqlTrackingStore
from mill.store.tracking_filters import Clause, OrderBy, parse_filter, parse_order_by
from mill.tracking.api import Handler
from mill.tracking.wire import Args

__all__ = ["REGISTRY_ROUTES", "wire_model_version", "wire_registered_model"]

STAGES = ("None", "Staging", "Production", "Archived")
SOURCE, MODEL_ID, STAGE = "mlflow.source", "mlflow.model_id", "stage"
_ARTIFACTS = "mlflow-artifacts:"
_BLOBSTORE = f"azureml://datastores/{DEFAULT_DATASTORE}/paths/mlflow-artifacts/"
_MODEL_FILTER = {"name": False}
_MODEL_ORDER = {"name": False, "creation_timestamp": True, "last_updated_timestamp": True}
_VERSION_FILTER = {"name": False, "run_id": False, "source_path": False, "version_number": True}
_VERSION_ORDER = {**_MODEL_ORDER, "version_number": True, "run_id": False}
_ORDER_ALIASES = {"timestamp": "last_updated_timestamp", "version": "version_number"}


# Wire forms -----------------------------------------------------------------------
def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _stage(v: ModelVersion) -> str:
    return v.properties.get(STAGE) or "None"


def _source(v: ModelVersion) -> str:
    """What the client gave as ``source``, or the Mill source in MLflow's words."""
    if v.properties.get(SOURCE):
        return v.properties[SOURCE]
    src = v.source or {}
    if src.get("kind") == "run":
        return f"runs:/{src.get('run_id')}/{src.get('path', '')}".rstrip("/")
    if src.get("kind") == "job_output":
        inner = f"/paths/{src['path']}" if src.get("path") else ""
        return f"azureml://jobs/{src.get('job')}/outputs/{src.get('output')}{inner}"
    if src.get("kind") == "uri":
        return str(src.get("uri"))
    return v.path


def wire_model_version(v: ModelVersion, aliases: dict[str, str]) -> dict[str, Any]:
    """A version as MLflow's ``ModelVersion`` message; ``aliases`` is its model's."""
    out: dict[str, Any] = {
        "name": v.name,
        "version": v.version,
        "creation_timestamp": _ms(v.created_at),
        "last_updated_timestamp": _ms(v.updated_at or v.created_at),
        "current_stage": _stage(v),
        "source": _source(v),
        "status": "READY",
        "run_link": "",
        "tags": [{"key": k, "value": val} for k, val in v.tags.items()],
        "aliases": sorted(a for a, num in aliases.items() if num == v.version),
    }
    if v.description is not None:  # the client tells "" from unset
        out["description"] = v.description
    if v.run_id:
        out["run_id"] = v.run_id
    if v.properties.get(MODEL_ID):
        out["model_id"] = v.properties[MODEL_ID]
    return out


def _latest_per_stage(versions: Iterable[ModelVersion]) -> list[ModelVersion]:
    latest: dict[str, ModelVersion] = {}
    for v in versions:
        seen = latest.get(_stage(v))
        if seen is None or _number(v) > _number(seen):
            latest[_stage(v)] = v
    return sorted(latest.values(), key=_number)


def wire_registered_model(m: RegisteredModel, versions: list[ModelVersion]) -> dict[str, Any]:
    """A model name as MLflow's ``RegisteredModel``; ``versions`` are all of its versions."""
    return {
        "name": m.name,
        "creation_timestamp": _ms(m.created_at),
        "last_updated_timestamp": _ms(m.updated_at or m.created_at),
        **({"description": m.description} if m.description is not None else {}),
        "latest_versions": [wire_model_version(v, m.aliases) for v in _latest_per_stage(versions)],
        "tags": [{"key": k, "value": val} for k, val in m.tags.items()],
        "aliases": [{"alias": a, "version": num} for a, num in m.aliases.items()],
    }


def _number(v: ModelVersion) -> int:
    return int(v.version) if v.version.isdigit() else 0


# Registered models ----------------------------------------------------------------
def _ctx(a: Args) -> Context:
    ctx: Context = a.state.ctx
    return ctx


def _name(a: Args, field: str = "name") -> str:
    name = a.str(field)
    if not name:
        raise UsageError(f"Missing value for required parameter '{field}'.")
    return name


def _valid_name(name: str, field: str = "name") -> str:
    """Mill's rule for model names (MLflow's is looser); the message names the rule."""
    try:
        specs.parse_model({"name": name, "path": "runs:/check"})
    except SpecError as exc:
        raise UsageError(f"invalid {field} {name!r}: {exc.message}") from None
    return name


def _versions(ctx: Context, ws: str, name: str | None = None) -> list[ModelVersion]:
    return ctx.store.list_model_versions(ws, name, include_archived=True)


def _model_body(ctx: Context, ws: str, model: RegisteredModel) -> dict[str, Any]:
    return {"registered_model": wire_registered_model(model, _versions(ctx, ws, model.name))}


def create_registered_model(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    ctx = _ctx(a)
    model = ctx.store.create_registered_model(
        ws, _valid_name(_name(a)), a.str("description") or None, _tags(a)
    )
    return _model_body(ctx, ws, model)


def get_registered_model(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    ctx = _ctx(a)
    return _model_body(ctx, ws, ctx.store.get_registered_model(ws, _name(a)))


def rename_registered_model(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    ctx = _ctx(a)
    new_name = _valid_name(_name(a, "new_name"), "new_name")

    def change(model: RegisteredModel) -> None:
        model.name = new_name

    return _model_body(ctx, ws, ctx.store.update_registered_model(ws, _name(a), change))


def update_registered_model(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    ctx = _ctx(a)
    description = a.str("description")

    def change(model: RegisteredModel) -> None:
        model.description = description

    return _model_body(ctx, ws, ctx.store.update_registered_model(ws, _name(a), change))


def delete_registered_model(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    ctx, name = _ctx(a), _name(a)
    ctx.store.get_registered_model(ws, name)  # 404 before anything is removed
    doomed = _versions(ctx, ws, name)
    ctx.store.delete_registered_model(ws, name)
    for v in doomed:
        _remove_files(ctx, ws, v)
    return {}


def search_registered_models(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    ctx = _ctx(a)
    clauses = parse_filter(a.str("filter") or None, _MODEL_FILTER)
    if any(c.entity not in ("attribute", "tag") for c in clauses):
        raise UsageError(f"invalid filter {a.str('filter')!r}: use name and tags.<key>")
    orders = _orders(a, _MODEL_ORDER)
    models = [
        m
        for m in ctx.store.list_registered_models(ws)
        if all(_matches(_model_field(m, c), c) for c in clauses)
    ]
    models = _sorted(models, orders, _model_key, default=[OrderBy("attribute", "name", True)])
    page, token = _page(a, models, default=100, limit=1000)
    by_name: dict[str, list[ModelVersion]] = {}
    for v in _versions(ctx, ws):
        by_name.setdefault(v.name, []).append(v)
    found = [wire_registered_model(m, by_name.get(m.name, [])) for m in page]
    return {"registered_models": found, **({"next_page_token": token} if token else {})}


def get_latest_versions(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    ctx, name = _ctx(a), _name(a)
    model = ctx.store.get_registered_model(ws, name)
    stages = {_canonical_stage(str(s)) for s in a.list("stages")}
    latest = _latest_per_stage(_versions(ctx, ws, name))
    chosen = [v for v in latest if not stages or _stage(v) in stages]
    return {"model_versions": [wire_model_version(v, model.aliases) for v in chosen]}


def set_registered_model_tag(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    key, value = _tag_key(a), a.str("value")

    def change(model: RegisteredModel) -> None:
        model.tags[key] = value

    _ctx(a).store.update_registered_model(ws, _name(a), change)
    return {}


def delete_registered_model_tag(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    key = _tag_key(a)

    def change(model: RegisteredModel) -> None:
        model.tags.pop(key, None)

    _ctx(a).store.update_registered_model(ws, _name(a), change)
    return {}


def set_alias(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    alias = a.str("alias", required=True)
    if alias.lower() == "latest" or (alias[:1] in "vV" and alias[1:].isdigit()):
        raise UsageError(
            f"invalid alias {alias!r}: 'latest' and v<number> are reserved (they name versions)"
        )
    _ctx(a).store.set_model_alias(ws, _name(a), alias, a.str("version", required=True))
    return {}


def delete_alias(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    _ctx(a).store.delete_model_alias(ws, _name(a), a.str("alias", required=True))
    return {}


def get_by_alias(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    ctx, name, alias = _ctx(a), _name(a), a.str("alias", required=True)
    model = ctx.store.get_registered_model(ws, name)
    if alias not in model.aliases:
        raise NotFoundError(f"Registered model alias {alias} not found.")
    version = ctx.store.get_model_version(ws, name, model.aliases[alias])
    return {"model_version": wire_model_version(version, model.aliases)}


# Model versions -------------------------------------------------------------------
def create_model_version(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    ctx, name = _ctx(a), _name(a)
    source = a.str("source", required=True)
    ctx.store.get_registered_model(ws, name)  # MLflow: the name must be registered first
    path, run_id, model_id = _translate(ctx, store, ws, source, a.str("model_id") or None)
    run_id = a.str("run_id") or run_id
    properties = {SOURCE: source, **({MODEL_ID: model_id} if model_id else {})}
    body: dict[str, Any] = {
        "name": name,
        "type": "mlflow_model" if _has_mlmodel(ctx, store, ws, path) else "custom_model",
        "path": path,
        "description": a.str("description") or None,
        "tags": _tags(a),
        "properties": properties,
    }
    version = registry.create(ctx, ws, body, run_id=run_id or None)
    aliases = ctx.store.get_registered_model(ws, name).aliases
    return {"model_version": wire_model_version(version, aliases)}


def get_model_version(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    ctx, name = _ctx(a), _name(a)
    version = ctx.store.get_model_version(ws, name, _version(a))
    return {"model_version": wire_model_version(version, _aliases(ctx, ws, name))}


def update_model_version(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    description = a.str("description")

    def change(v: ModelVersion) -> None:
        v.description = description

    return _changed(a, ws, change)


def transition_stage(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    stage = _canonical_stage(a.str("stage", required=True))
    ctx, name, number = _ctx(a), _name(a), _version(a)
    archive_others = str(a.data.get("archive_existing_versions", "")).lower() == "true"

    def change(v: ModelVersion) -> None:
        if stage == "None":
            v.properties.pop(STAGE, None)
        else:
            v.properties[STAGE] = stage

    def archive(v: ModelVersion) -> None:
        v.properties[STAGE] = "Archived"

    ctx.store.get_model_version(ws, name, number)  # 404 before the others change
    if archive_others and stage in ("Staging", "Production"):
        for other in _versions(ctx, ws, name):
            if other.version != number and _stage(other) == stage:
                ctx.store.update_model_version(ws, name, other.version, archive)
    return _changed(a, ws, change)


def delete_model_version(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    ctx, name, number = _ctx(a), _name(a), _version(a)
    version = ctx.store.get_model_version(ws, name, number)
    ctx.store.delete_model_version(ws, name, number)
    _remove_files(ctx, ws, version)
    return {}


def get_download_uri(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    version = _ctx(a).store.get_model_version(ws, _name(a), _version(a))
    if not version.path.startswith(_BLOBSTORE):
        raise UsageError(f"the files of {version.name} {version.version} are not served here")
    return {"artifact_uri": _ARTIFACTS + "/" + version.path[len(_BLOBSTORE) :].rstrip("/")}


def search_model_versions(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    ctx = _ctx(a)
    clauses = parse_filter(a.str("filter") or None, _VERSION_FILTER)
    if any(c.entity not in ("attribute", "tag") for c in clauses):
        raise UsageError(
            f"invalid filter {a.str('filter')!r}: use name, run_id, source_path, "
            "version_number and tags.<key>"
        )
    orders = _orders(a, _VERSION_ORDER)
    names = [c.value for c in clauses if (c.entity, c.key, c.op) == ("attribute", "name", "=")]
    versions = _versions(ctx, ws, str(names[0]) if len(names) == 1 else None)
    found = [v for v in versions if all(_matches(_version_field(v, c), c) for c in clauses)]
    default = [
        OrderBy("attribute", "last_updated_timestamp", False),
        OrderBy("attribute", "name", True),
        OrderBy("attribute", "version_number", False),
    ]
    found = _sorted(found, orders, _version_key, default=default)
    page, token = _page(a, found, default=10000, limit=200000)
    aliases = {m.name: m.aliases for m in ctx.store.list_registered_models(ws)}
    wired = [wire_model_version(v, aliases.get(v.name, {})) for v in page]
    return {"model_versions": wired, **({"next_page_token": token} if token else {})}


def set_model_version_tag(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    key, value = _tag_key(a), a.str("value")

    def change(v: ModelVersion) -> None:
        v.tags[key] = value

    _changed(a, ws, change)
    return {}


def delete_model_version_tag(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    key = _tag_key(a)

    def change(v: ModelVersion) -> None:
        v.tags.pop(key, None)

    _changed(a, ws, change)
    return {}


# Helpers --------------------------------------------------------------------------
def _version(a: Args) -> str:
    return a.str("version", required=True)


def _tags(a: Args) -> dict[str, str]:
    tags = {str(t.get("key", "")): str(t.get("value", "")) for t in a.list("tags")}
    if "" in tags:
        raise UsageError("a tag key cannot be empty")
    return tags


def _tag_key(a: Args) -> str:
    return a.str("key", required=True)


def _aliases(ctx: Context, ws: str, name: str) -> dict[str, str]:
    return ctx.store.get_registered_model(ws, name).aliases


def _changed(a: Args, ws: str, change: Callable[[ModelVersion], None]) -> Any:
    ctx, name = _ctx(a), _name(a)
    version = ctx.store.update_model_version(ws, name, _version(a), change)
    return {"model_version": wire_model_version(version, _aliases(ctx, ws, name))}


def _canonical_stage(stage: str) -> str:
    for known in STAGES:
        if stage.lower() == known.lower():
            return known
    raise UsageError(f"Invalid Model Version stage: {stage}. Value must be one of {STAGES}.")


def _translate(
    ctx: Context, store: SqlTrackingStore, ws: str, source: str, model_id: str | None
) -> tuple[str, str | None, str | None]:
    """The client's ``source`` as a path the registry takes, with the run and model ids.

    ``models:/<id>`` is a LoggedModel, ``models:/<name>/<version>`` (or ``@alias``) a
    registered version (a copy), ``mlflow-artifacts:`` a file under the artifact root;
    anything else (``runs:/``, datastore URIs, URLs) the registry reads itself.
    """
    if source.startswith("models:/"):
        inner = source[len("models:/") :].strip("/")
        name, _, version = inner.partition("/")
        if not version and "@" not in name:  # a LoggedModel id
            logged = LoggedModelStore(store).get(ws, name)
            run_id = logged.get("source_run_id")
            path = _blobstore_uri(str(logged["artifact_uri"]))
            return path, str(run_id) if run_id else None, name
        label = None
        if "@" in name:
            name, label = name.split("@", 1)
        found = registry.resolve(ctx, ws, name, version or None, label)
        return found.path, found.run_id, found.properties.get(MODEL_ID)
    if source.startswith(_ARTIFACTS):
        return _blobstore_uri(source), None, model_id
    return source, None, model_id


def _blobstore_uri(uri: str) -> str:
    """``mlflow-artifacts:/<p>`` (or ``mlflow-artifacts://<host>/<p>``) on the blobstore."""
    if not uri.startswith(_ARTIFACTS):
        raise UsageError(f"cannot read MLflow artifacts at {uri!r}")
    rest = uri[len(_ARTIFACTS) :]
    if rest.startswith("//"):  # a netloc: the server's address, not part of the path
        rest = rest[2:].partition("/")[2]
    return _BLOBSTORE + rest.strip("/")


def _has_mlmodel(ctx: Context, store: SqlTrackingStore, ws: str, path: str) -> bool:
    """Whether ``path`` is a folder with an MLmodel file (else: a custom model)."""
    try:
        if path.startswith("runs:/"):  # a LoggedModel of the run, else the run's artifacts
            run_id, _, inner = path[len("runs:/") :].partition("/")
            logged = LoggedModelStore(store).find_by_run(ws, run_id, inner.strip("/"))
            if logged is not None:
                return True
            run = store.get_run(run_id, ws)
            path = _blobstore_uri(f"{run['info']['artifact_uri']}/{inner}")
        fs, relative = datastores.locate(ctx, ws, path)
        return fs.stat(f"{relative.rstrip('/')}/MLmodel").kind == "file"
    except MillError:
        return False  # unreadable here: the registry says why when it copies the files


def _remove_files(ctx: Context, ws: str, version: ModelVersion) -> None:
    """Drop a deleted version's copy of its files (``registry/<name>/<version>/``)."""
    if not version.path.startswith(f"{_BLOBSTORE}registry/"):
        return
    try:
        local = resolve_uri(ctx, ws, version.path.rstrip("/"))
    except MillError:
        return
    shutil.rmtree(local.parent, ignore_errors=True)


def _model_field(m: RegisteredModel, c: Clause) -> Any:
    return m.tags.get(c.key) if c.entity == "tag" else m.name


def _version_field(v: ModelVersion, c: Clause) -> Any:
    if c.entity == "tag":
        return v.tags.get(c.key)
    return {
        "name": v.name,
        "run_id": v.run_id,
        "source_path": _source(v),
        "version_number": _number(v),
    }[c.key]


def _matches(value: Any, clause: Clause) -> bool:
    import fnmatch

    want, op = clause.value, clause.op
    if value is None:  # a missing tag is not 'x' (the client's own prompt filter relies on it)
        return op in ("!=", "NOT IN")
    if op in ("IN", "NOT IN"):
        return (str(value) in tuple(want)) == (op == "IN")  # type: ignore[arg-type]
    if op in ("LIKE", "ILIKE"):
        pattern = str(want).replace("%", "*").replace("_", "?")
        if op == "ILIKE":
            return fnmatch.fnmatchcase(str(value).lower(), pattern.lower())
        return fnmatch.fnmatchcase(str(value), pattern)
    if isinstance(want, float):
        number = float(value)
        return {
            "=": number == want,
            "!=": number != want,
            ">": number > want,
            ">=": number >= want,
            "<": number < want,
            "<=": number <= want,
        }[op]
    if op not in ("=", "!="):
        raise UsageError(f"invalid comparator {op!r} for a string")
    return (str(value) == want) == (op == "=")


def _orders(a: Args, known: dict[str, bool]) -> list[OrderBy]:
    items = [str(o) for o in a.list("order_by")]
    for alias, field in _ORDER_ALIASES.items():
        items = [field + o[len(alias) :] if o.split(" ")[0] == alias else o for o in items]
    orders = parse_order_by(items, known)
    if any(o.entity != "attribute" for o in orders):
        raise UsageError(f"invalid order_by {items!r}: use {', '.join(known)}")
    return orders


def _model_key(m: RegisteredModel, field: str) -> Any:
    return {"name": m.name, "creation_timestamp": m.created_at}.get(field, m.updated_at)


def _version_key(v: ModelVersion, field: str) -> Any:
    values = {
        "name": v.name,
        "creation_timestamp": v.created_at,
        "last_updated_timestamp": v.updated_at,
        "version_number": _number(v),
        "run_id": v.run_id or "",
    }
    return values[field]


def _sorted(items: list[Any], orders: list[OrderBy], key: Any, default: list[OrderBy]) -> Any:
    """Sorted by ``orders`` then ``default`` (stable sorts, the last key first)."""
    result = list(items)
    for order in reversed([*orders, *default]):
        result.sort(key=lambda item: key(item, order.key), reverse=not order.ascending)
    return result


def _page(a: Args, items: list[Any], *, default: int, limit: int) -> tuple[list[Any], str]:
    size = a.int("max_results", default) or default
    if size < 1 or size > limit:
        raise UsageError(f"Invalid value {size} for parameter 'max_results': 1 to {limit}")
    token = a.str("page_token")
    if token and not token.isdigit():
        raise UsageError(f"Invalid page token {token!r}")
    offset = int(token or 0)
    more = str(offset + size) if len(items) > offset + size else ""
    return items[offset : offset + size], more


REGISTRY_ROUTES: list[tuple[str, str, Handler]] = [
    ("POST", "/registered-models/create", create_registered_model),
    ("GET", "/registered-models/get", get_registered_model),
    ("POST", "/registered-models/rename", rename_registered_model),
    ("PATCH", "/registered-models/update", update_registered_model),
    ("DELETE", "/registered-models/delete", delete_registered_model),
    ("GET", "/registered-models/search", search_registered_models),
    ("POST", "/registered-models/search", search_registered_models),
    ("POST", "/registered-models/get-latest-versions", get_latest_versions),
    ("GET", "/registered-models/get-latest-versions", get_latest_versions),
    ("POST", "/registered-models/set-tag", set_registered_model_tag),
    ("DELETE", "/registered-models/delete-tag", delete_registered_model_tag),
    ("POST", "/registered-models/alias", set_alias),
    ("DELETE", "/registered-models/alias", delete_alias),
    ("GET", "/registered-models/alias", get_by_alias),
    ("POST", "/model-versions/create", create_model_version),
    ("GET", "/model-versions/get", get_model_version),
    ("PATCH", "/model-versions/update", update_model_version),
    ("POST", "/model-versions/transition-stage", transition_stage),
    ("DELETE", "/model-versions/delete", delete_model_version),
    ("GET", "/model-versions/get-download-uri", get_download_uri),
    ("GET", "/model-versions/search", search_model_versions),
    ("POST", "/model-versions/search", search_model_versions),
    ("POST", "/model-versions/set-tag", set_model_version_tag),
    ("DELETE", "/model-versions/delete-tag", delete_model_version_tag),
]
