"""MLflow 3 LoggedModels on the tracking tables: a model's params and tags are JSON on its row."""

from __future__ import annotations

import uuid
from typing import Any, cast

from sqlalchemy import ColumnElement, select, update

from mill.errors import NotFoundError
from mill.store.tracking import ACTIVE, EXP, MODEL, SqlTrackingStore, now_ms
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

    def search(
        self, workspace: str, experiment_ids: list[str], filter_string: str | None = None
    ) -> list[dict[str, Any]]:
        ws_id = self.tracking.workspace_id(workspace)
        with self.tracking._read() as conn:
            pks = [self.tracking._experiment_pk(conn, ws_id, e) for e in experiment_ids]
        clauses = parse_filter(filter_string, _MODEL_ATTRIBUTES)
        models = self._models(workspace, MODEL.c.experiment_id.in_(pks))
        return [m for m in models if all(_model_matches(m, c) for c in clauses)]

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
            }
            for r in rows
        ]


_MODEL_ATTRIBUTES = {
    "name": False,
    "model_id": False,
    "source_run_id": False,
    "status": False,
    "model_type": False,
    "creation_timestamp": True,
    "creation_time": True,
}


def _model_matches(model: dict[str, Any], clause: Clause) -> bool:
    if clause.entity == "metric":
        return False  # logged-model metrics are not kept yet
    if clause.entity == "attribute":
        key = {
            "creation_time": "creation_timestamp_ms",
            "creation_timestamp": "creation_timestamp_ms",
        }
        value = model.get(key.get(clause.key, clause.key))
    else:
        value = model["params" if clause.entity == "param" else "tags"].get(clause.key)
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
