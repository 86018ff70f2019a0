"""Store queries for the model registry: model names, versions and aliases.

A mixin of :class:`mill.store.sql.SqlStore`, like :mod:`mill.store.assets`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mill.domain.entities import ModelVersion, RegisteredModel
from mill.errors import ConflictError, NotFoundError
from mill.store.tables import ModelAliasRow, ModelVersionRow, RegisteredModelRow, WorkspaceRow

__all__ = ["ModelStoreMixin"]


class ModelStoreMixin:
    # Provided by SqlStore.
    _session: Callable[[], AbstractContextManager[Session]]
    _workspace_row: Callable[[Session, str], WorkspaceRow]

    # Model names -------------------------------------------------------------------
    def create_registered_model(
        self,
        workspace: str,
        name: str,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        *,
        exist_ok: bool = False,
    ) -> RegisteredModel:
        now = time.time()
        try:
            with self._session() as s:
                ws = self._workspace_row(s, workspace)
                row = self._model_row(s, ws, name, required=False)
                if row is not None:
                    if not exist_ok:
                        raise ConflictError(f"model {name!r} already exists")
                    return _registered(s, row, ws.name)
                row = RegisteredModelRow(
                    workspace_id=ws.id,
                    name=name,
                    description=description,
                    tags=dict(tags or {}),
                    created_at=now,
                    updated_at=now,
                )
                s.add(row)
                s.flush()
                return _registered(s, row, ws.name)
        except IntegrityError:  # created by another writer in the meantime
            if exist_ok:
                return self.get_registered_model(workspace, name)
            raise ConflictError(f"model {name!r} already exists") from None

    def get_registered_model(self, workspace: str, name: str) -> RegisteredModel:
        with self._session() as s:
            ws = self._workspace_row(s, workspace)
            row = self._model_row(s, ws, name)
            assert row is not None
            return _registered(s, row, ws.name)

    def list_registered_models(self, workspace: str) -> list[RegisteredModel]:
        with self._session() as s:
            ws = self._workspace_row(s, workspace)
            rows = s.scalars(
                select(RegisteredModelRow)
                .where(RegisteredModelRow.workspace_id == ws.id)
                .order_by(RegisteredModelRow.name)
            )
            return [_registered(s, r, ws.name) for r in rows]

    def update_registered_model(
        self, workspace: str, name: str, change: Callable[[RegisteredModel], None]
    ) -> RegisteredModel:
        """Change description and tags; ``change`` may also rename (``model.name``)."""
        try:
            with self._session() as s:
                ws = self._workspace_row(s, workspace)
                row = self._model_row(s, ws, name, lock=True)
                assert row is not None
                model = _registered(s, row, ws.name)
                change(model)
                row.name = model.name
                row.description = model.description
                row.tags = dict(model.tags)
                row.updated_at = time.time()
                s.flush()
                return _registered(s, row, ws.name)
        except IntegrityError:
            raise ConflictError("a model with that name already exists") from None

    def delete_registered_model(self, workspace: str, name: str) -> None:
        with self._session() as s:
            ws = self._workspace_row(s, workspace)
            row = self._model_row(s, ws, name, lock=True)
            assert row is not None
            for table in (ModelAliasRow, ModelVersionRow):
                s.execute(delete(table).where(table.model_id == row.id))
            s.delete(row)

    # Versions ---------------------------------------------------------------------
    def add_model_version(self, version: ModelVersion) -> ModelVersion:
        """Store a version; the model name is created with its first version."""
        self.create_registered_model(version.workspace, version.name, exist_ok=True)
        now = time.time()
        try:
            with self._session() as s:
                ws = self._workspace_row(s, version.workspace)
                model = self._model_row(s, ws, version.name, lock=True)
                assert model is not None
                row = ModelVersionRow(model_id=model.id, created_at=version.created_at or now)
                _fill_version(row, version)
                row.updated_at = now
                model.updated_at = now
                s.add(row)
                s.flush()
                return _version(row, model.name, ws.name)
        except IntegrityError:
            raise ConflictError(
                f"model {version.name!r} version {version.version!r} already exists; "
                "versions are immutable",
                hint="leave --version out to get the next one",
            ) from None

    def get_model_version(self, workspace: str, name: str, version: str) -> ModelVersion:
        with self._session() as s:
            ws = self._workspace_row(s, workspace)
            model = self._model_row(s, ws, name)
            assert model is not None
            row = self._version_row(s, model, version)
            return _version(row, model.name, ws.name)

    def list_model_versions(
        self, workspace: str, name: str | None = None, include_archived: bool = False
    ) -> list[ModelVersion]:
        """Every version (of ``name``, or of all models), oldest first."""
        with self._session() as s:
            ws = self._workspace_row(s, workspace)
            stmt = (
                select(ModelVersionRow, RegisteredModelRow.name)
                .join(RegisteredModelRow, RegisteredModelRow.id == ModelVersionRow.model_id)
                .where(RegisteredModelRow.workspace_id == ws.id)
            )
            if name is not None:
                stmt = stmt.where(RegisteredModelRow.name == name)
            if not include_archived:
                stmt = stmt.where(ModelVersionRow.archived.is_(False))
            rows = s.execute(stmt.order_by(RegisteredModelRow.name, ModelVersionRow.id))
            return [_version(row, model_name, ws.name) for row, model_name in rows]

    def model_versions_of_run(self, workspace: str, run_id: str) -> list[ModelVersion]:
        """The versions whose files came from the MLflow run ``run_id`` (a job's, by name)."""
        with self._session() as s:
            ws = self._workspace_row(s, workspace)
            rows = s.execute(
                select(ModelVersionRow, RegisteredModelRow.name)
                .join(RegisteredModelRow, RegisteredModelRow.id == ModelVersionRow.model_id)
                .where(RegisteredModelRow.workspace_id == ws.id, ModelVersionRow.run_id == run_id)
                .order_by(ModelVersionRow.id)
            )
            return [_version(row, model_name, ws.name) for row, model_name in rows]

    def model_version_numbers(self, workspace: str, name: str) -> list[str]:
        """Every version string of ``name`` (archived ones too); [] for an unknown name."""
        with self._session() as s:
            ws = self._workspace_row(s, workspace)
            model = self._model_row(s, ws, name, required=False)
            if model is None:
                return []
            return list(
                s.scalars(
                    select(ModelVersionRow.version)
                    .where(ModelVersionRow.model_id == model.id)
                    .order_by(ModelVersionRow.id)
                )
            )

    def update_model_version(
        self, workspace: str, name: str, version: str, change: Callable[[ModelVersion], None]
    ) -> ModelVersion:
        """Change the mutable fields: description, tags, properties, archived."""
        with self._session() as s:
            ws = self._workspace_row(s, workspace)
            model = self._model_row(s, ws, name)
            assert model is not None
            row = self._version_row(s, model, version, lock=True)
            current = _version(row, model.name, ws.name)
            change(current)
            row.description = current.description
            row.tags = dict(current.tags)
            row.properties = dict(current.properties)
            row.archived = current.archived
            row.updated_at = time.time()
            return _version(row, model.name, ws.name)

    def delete_model_version(self, workspace: str, name: str, version: str) -> None:
        with self._session() as s:
            ws = self._workspace_row(s, workspace)
            model = self._model_row(s, ws, name, lock=True)
            assert model is not None
            row = self._version_row(s, model, version)
            s.execute(
                delete(ModelAliasRow).where(
                    ModelAliasRow.model_id == model.id, ModelAliasRow.version == version
                )
            )
            s.delete(row)

    # Aliases ----------------------------------------------------------------------
    def set_model_alias(self, workspace: str, name: str, alias: str, version: str) -> None:
        with self._session() as s:
            ws = self._workspace_row(s, workspace)
            model = self._model_row(s, ws, name, lock=True)
            assert model is not None
            self._version_row(s, model, version)  # must exist
            row = s.scalar(
                select(ModelAliasRow).where(
                    ModelAliasRow.model_id == model.id, ModelAliasRow.alias == alias
                )
            )
            if row is None:
                s.add(ModelAliasRow(model_id=model.id, alias=alias, version=version))
            else:
                row.version = version

    def delete_model_alias(self, workspace: str, name: str, alias: str) -> None:
        with self._session() as s:
            ws = self._workspace_row(s, workspace)
            model = self._model_row(s, ws, name)
            assert model is not None
            s.execute(
                delete(ModelAliasRow).where(
                    ModelAliasRow.model_id == model.id, ModelAliasRow.alias == alias
                )
            )

    # Rows -------------------------------------------------------------------------
    @staticmethod
    def _model_row(
        s: Session, ws: WorkspaceRow, name: str, *, required: bool = True, lock: bool = False
    ) -> RegisteredModelRow | None:
        stmt = select(RegisteredModelRow).where(
            RegisteredModelRow.workspace_id == ws.id, RegisteredModelRow.name == name
        )
        row = s.scalar(stmt.with_for_update() if lock else stmt)
        if row is None and required:
            raise NotFoundError(f"model {name!r} not found in workspace {ws.name!r}")
        return row

    @staticmethod
    def _version_row(
        s: Session, model: RegisteredModelRow, version: str, *, lock: bool = False
    ) -> ModelVersionRow:
        stmt = select(ModelVersionRow).where(
            ModelVersionRow.model_id == model.id, ModelVersionRow.version == version
        )
        row = s.scalar(stmt.with_for_update() if lock else stmt)
        if row is None:
            known = list(
                s.scalars(
                    select(ModelVersionRow.version)
                    .where(ModelVersionRow.model_id == model.id)
                    .order_by(ModelVersionRow.id)
                )
            )
            raise NotFoundError(
                f"model {model.name!r} version {version!r} not found"
                + (f"; versions: {', '.join(known)}" if known else ""),
                details={"known": known},
            )
        return row


def _registered(s: Session, row: RegisteredModelRow, workspace: str) -> RegisteredModel:
    aliases = {
        a.alias: a.version
        for a in s.scalars(
            select(ModelAliasRow)
            .where(ModelAliasRow.model_id == row.id)
            .order_by(ModelAliasRow.alias)
        )
    }
    return RegisteredModel(
        workspace=workspace,
        name=row.name,
        description=row.description,
        tags=dict(row.tags or {}),
        aliases=aliases,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _fill_version(row: ModelVersionRow, version: ModelVersion) -> None:
    row.version = version.version
    row.type = version.type
    row.path = version.path
    row.description = version.description
    row.tags = dict(version.tags)
    row.properties = dict(version.properties)
    row.flavors = version.flavors
    row.source = version.source
    row.lineage = version.lineage
    row.run_id = version.run_id
    row.size_bytes = version.size_bytes
    row.file_count = version.file_count
    row.archived = version.archived


def _version(row: ModelVersionRow, name: str, workspace: str) -> ModelVersion:
    return ModelVersion(
        workspace=workspace,
        name=name,
        version=row.version,
        type=row.type,
        path=row.path,
        description=row.description,
        tags=dict(row.tags or {}),
        properties=dict(row.properties or {}),
        flavors=row.flavors,
        source=row.source,
        lineage=row.lineage,
        run_id=row.run_id,
        size_bytes=row.size_bytes,
        file_count=row.file_count,
        archived=row.archived,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
