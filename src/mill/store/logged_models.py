"""MLflow 3 LoggedModels on the tracking tables: a model's params and tags are JSON on its row;
its metrics are rows of ``tracking_logged_model_metrics`` (points logged with ``model_id``).

Search runs in Python over an experiment's models, as MLflow's own semantics are easiest to
match there: a metric filter matches when ANY of the model's points for that key (on the
``datasets`` given, if any) satisfies it; ``order_by`` a metric sorts by its latest point
(timestamp, then step), models without it last; ties by newest, then model id.
"""

from __future__ import annotations

import math
import uuid
from typing import Any, cast

from sqlalchemy import ColumnElement, and_, select, update

from mill.errors import NotFoundError, UsageError
from mill.store.tracking import ACTIVE, EXP, MODEL, MODEL_METRIC, SqlTrackingStore, now_ms
from mill.store.tracking_filters import Clause, parse_filter

__all__ = ["LoggedModelStore"]


class LoggedModelStore:
    """MLflow 3 LoggedModels; params and tags are JSON on the row (few, read together)."""

    def __init__(self, tracking: SqlTrackingStore) -> None:
        self.tracking = tracking

    def create(
        self,
        workspace: str,
        experiment_id: str,
        name: str,
        source_run_id: str | None = None,
        model_type: str | None = None,
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        ws_id = self.tracking.workspace_id(workspace)
        model_id = f"m-{uuid.uuid4().hex}"
        ts = now_ms()
        with self.tracking._write() as conn:
            pk = self.tracking._experiment_pk(conn, ws_id, experiment_id)
            wire_exp = "0" if str(experiment_id) == "0" else str(pk)
            conn.execute(
                MODEL.insert().values(
                    model_id=model_id,
                    experiment_id=pk,
                    name=name or f"model-{model_id[2:10]}",
                    source_run_id=source_run_id or None,
                    status="LOGGED_MODEL_PENDING",
                    status_message=None,
                    model_type=model_type or None,
                    artifact_location=f"mlflow-artifacts:/{wire_exp}/models/{model_id}/artifacts",
                    lifecycle_stage=ACTIVE,
                    creation_timestamp=ts,
                    last_updated_timestamp=ts,
                    params=dict(params or {}),
                    tags=dict(tags or {}),
                    metrics=[],
                )
            )
        return self.get(workspace, model_id)

    def get(self, workspace: str, model_id: str) -> dict[str, Any]:
        found = self._models(workspace, MODEL.c.model_id == model_id)
        if not found:
            raise NotFoundError(f"Logged model with ID '{model_id}' not found.")
        return found[0]

    def find_by_run(self, workspace: str, run_id: str, name: str) -> dict[str, Any] | None:
        """The newest model named ``name`` that the run logged, if any (3.x ``log_model``)."""
        found = self._models(workspace, and_(MODEL.c.source_run_id == run_id, MODEL.c.name == name))
        return found[0] if found else None  # newest first

    def search(
        self,
        workspace: str,
        experiment_ids: list[str],
        filter_string: str | None = None,
        datasets: list[dict[str, Any]] | None = None,
        order_by: list[dict[str, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        """Models of the experiments matching ``filter_string`` and ``datasets``, sorted."""
        datasets = list(datasets or [])
        if not all(d.get("dataset_name") for d in datasets):
            raise UsageError("`dataset_name` in the `datasets` clause must be specified.")
        clauses = parse_filter(filter_string, _MODEL_ATTRIBUTES)
        for clause in clauses:
            if clause.entity == "dataset":
                raise UsageError(
                    f"invalid filter {filter_string!r}: logged models filter datasets through "
                    "the `datasets` argument"
                )
        orders = [_parse_order(o) for o in order_by or []]
        ws_id = self.tracking.workspace_id(workspace)
        with self.tracking._read() as conn:
            pks = [self.tracking._experiment_pk(conn, ws_id, e) for e in experiment_ids]
        models = self._models(workspace, MODEL.c.experiment_id.in_(pks))
        if datasets and not any(c.entity == "metric" for c in clauses):
            models = [m for m in models if any(_on(p, datasets) for p in m["metrics"])]
        found = [m for m in models if all(_model_matches(m, c, datasets) for c in clauses)]
        return _sorted(found, orders)

    def update(self, workspace: str, model_id: str, change: Any) -> dict[str, Any]:
        """Read the row, let ``change(values)`` edit params/tags/status, write it back."""
        self.get(workspace, model_id)
        with self.tracking._write() as conn:
            row = conn.execute(select(MODEL).where(MODEL.c.model_id == model_id)).mappings().one()
            values = {
                "params": dict(row["params"] or {}),
                "tags": dict(row["tags"] or {}),
                "status": row["status"],
                "lifecycle_stage": row["lifecycle_stage"],
            }
            change(values)
            values["last_updated_timestamp"] = now_ms()
            conn.execute(update(MODEL).where(MODEL.c.model_id == model_id).values(**values))
        return self.get(workspace, model_id)

    def _models(self, workspace: str, where: ColumnElement[bool]) -> list[dict[str, Any]]:
        ws_id = self.tracking.workspace_id(workspace)
        stmt = (
            select(MODEL, EXP.c.is_default)
            .join(EXP, EXP.c.id == MODEL.c.experiment_id)
            .where(where, EXP.c.workspace_id == ws_id, MODEL.c.lifecycle_stage == ACTIVE)
            .order_by(MODEL.c.creation_timestamp.desc())
        )
        with self.tracking._read() as conn:
            rows = conn.execute(stmt).mappings().all()
            metrics = self._metrics(conn, [r["model_id"] for r in rows])
        return [
            {
                "model_id": r["model_id"],
                "experiment_id": "0" if r["is_default"] else str(r["experiment_id"]),
                "name": r["name"],
                "source_run_id": r["source_run_id"],
                "status": r["status"],
                "status_message": r["status_message"],
                "model_type": r["model_type"],
                "artifact_uri": r["artifact_location"],
                "creation_timestamp_ms": r["creation_timestamp"],
                "last_updated_timestamp_ms": r["last_updated_timestamp"],
                "params": dict(r["params"] or {}),
                "tags": dict(r["tags"] or {}),
                "metrics": metrics.get(r["model_id"], []),
            }
            for r in rows
        ]

    def _metrics(self, conn: Any, model_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        if not model_ids:
            return out
        m = MODEL_METRIC.c
        columns = (m.model_id, m.run_uuid, m.key, m.value, m.timestamp, m.step, m.is_nan)
        stmt = (
            select(*columns, m.dataset_name, m.dataset_digest)
            .where(m.model_id.in_(model_ids))
            .order_by(m.id)
        )
        for row in conn.execute(stmt):
            point = {
                "key": row.key,
                "value": math.nan if row.is_nan else row.value,
                "timestamp": row.timestamp,
                "step": row.step,
                "model_id": row.model_id,
                "run_id": row.run_uuid,
                "dataset_name": row.dataset_name,
                "dataset_digest": row.dataset_digest,
            }
            out.setdefault(row.model_id, []).append(point)
        return out


_MODEL_ATTRIBUTES = {
    "name": False,
    "model_id": False,
    "source_run_id": False,
    "status": False,
    "model_type": False,
    "creation_timestamp": True,
    "creation_time": True,
    "last_updated_timestamp": True,
}
_ALIASES = {
    "creation_time": "creation_timestamp_ms",
    "creation_timestamp": "creation_timestamp_ms",
    "last_updated_timestamp": "last_updated_timestamp_ms",
}
_ORDER_ATTRIBUTES = ("name", "model_id", "creation_timestamp_ms", "last_updated_timestamp_ms")


def _on(point: dict[str, Any], datasets: list[dict[str, Any]]) -> bool:
    """Whether a metric point was logged on one of ``datasets`` (name, and digest if given)."""
    return any(
        point["dataset_name"] == d["dataset_name"]
        and (not d.get("dataset_digest") or point["dataset_digest"] == d["dataset_digest"])
        for d in datasets
    )


def _model_matches(
    model: dict[str, Any], clause: Clause, datasets: list[dict[str, Any]] | None = None
) -> bool:
    if clause.entity == "metric":
        return any(
            _matches(p["value"], clause)
            for p in model["metrics"]
            if p["key"] == clause.key
            and not math.isnan(p["value"])
            and (not datasets or _on(p, datasets))
        )
    if clause.entity == "attribute":
        value = model.get(_ALIASES.get(clause.key, clause.key))
    else:
        value = model["params" if clause.entity == "param" else "tags"].get(clause.key)
    return _matches(value, clause)


def _matches(value: Any, clause: Clause) -> bool:
    if value is None:
        return False
    want = clause.value
    if clause.op == "IN":
        return str(value) in cast(tuple[str, ...], want)
    if clause.op == "NOT IN":
        return str(value) not in cast(tuple[str, ...], want)
    if clause.op in ("LIKE", "ILIKE"):
        import fnmatch

        pattern = str(want).replace("%", "*").replace("_", "?")
        if clause.op == "ILIKE":
            return fnmatch.fnmatch(str(value).lower(), pattern.lower())
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
        }[clause.op]
    return (str(value) == want) if clause.op == "=" else (str(value) != want)


class _Order:
    def __init__(self, field: str, ascending: bool, dataset: dict[str, Any] | None) -> None:
        self.field, self.ascending, self.dataset = field, ascending, dataset

    def value(self, model: dict[str, Any]) -> Any:
        if not self.field.startswith("metrics."):
            return model.get(self.field)
        key = self.field.split(".", 1)[1]
        points = [
            p
            for p in model["metrics"]
            if p["key"] == key and (self.dataset is None or _on(p, [self.dataset]))
        ]
        if not points:
            return None
        return max(points, key=lambda p: (p["timestamp"], p["step"]))["value"]


def _parse_order(item: Any) -> _Order:
    if not isinstance(item, dict) or not item.get("field_name"):
        raise UsageError(f"invalid order_by {item!r}: expected a field_name")
    field = str(item["field_name"]).strip()
    if "." in field:
        if field.split(".", 1)[0] != "metrics":
            raise UsageError(f"Invalid order by field name: {field}, only metrics.<name> sorts")
    else:
        field = _ALIASES.get(field, field)
        if field not in _ORDER_ATTRIBUTES:
            raise UsageError(f"Invalid order by field name: {item['field_name']}.")
    name, digest = item.get("dataset_name"), item.get("dataset_digest")
    if digest and not name:
        raise UsageError("`dataset_digest` can only be specified if `dataset_name` is also set.")
    dataset = {"dataset_name": name, "dataset_digest": digest} if name else None
    ascending = item.get("ascending", True)
    return _Order(field, ascending is not False and ascending != "false", dataset)


def _sorted(models: list[dict[str, Any]], orders: list[_Order]) -> list[dict[str, Any]]:
    keys = list(orders)
    if not any(o.field == "creation_timestamp_ms" for o in keys):
        keys.append(_Order("creation_timestamp_ms", False, None))
    if not any(o.field == "model_id" for o in keys):
        keys.append(_Order("model_id", True, None))
    # Stable sorts from the last key to the first; missing values go last either way.
    for order in reversed(keys):
        present = [m for m in models if order.value(m) is not None]
        missing = [m for m in models if order.value(m) is None]
        present.sort(key=order.value, reverse=not order.ascending)
        models = present + missing
    return models
