"""Store queries for datastores (beyond add/list), vault secrets and data assets.

A mixin of :class:`mill.store.sql.SqlStore`: it uses the store's ``_session`` and
``_workspace_row`` and keeps these nouns' queries out of the job/environment module.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mill.domain.entities import DataAsset, Datastore, SecretInfo
from mill.errors import ConflictError, NotFoundError
from mill.store.tables import DataAssetRow, DatastoreRow, SecretRow, WorkspaceRow

__all__ = ["AssetStoreMixin"]


class AssetStoreMixin:
    # Provided by SqlStore.
    _session: Callable[[], AbstractContextManager[Session]]
    _workspace_row: Callable[[Session, str], WorkspaceRow]

    # Datastores -------------------------------------------------------------------
    def update_datastore(
        self, workspace: str, name: str, change: Callable[[Datastore], None]
    ) -> Datastore:
        """Apply ``change`` to a datastore under a row lock (type and name stay)."""
        with self._session() as s:
            ws = self._workspace_row(s, workspace)
            row = self._datastore_row(s, ws, name)
            current = _datastore(row, ws.name)
            change(current)
            row.config = dict(current.config)
            row.description = current.description
            row.tags = dict(current.tags)
            row.updated_at = time.time()
            return _datastore(row, ws.name)

    def set_default_datastore(self, workspace: str, name: str) -> Datastore:
        with self._session() as s:
            ws = self._workspace_row(s, workspace)
            row = self._datastore_row(s, ws, name)
            s.execute(
                update(DatastoreRow)
                .where(DatastoreRow.workspace_id == ws.id, DatastoreRow.id != row.id)
                .values(is_default=False)
            )
            row.is_default = True
            row.updated_at = time.time()
            return _datastore(row, ws.name)

    def delete_datastore(self, workspace: str, name: str) -> None:
        with self._session() as s:
            ws = self._workspace_row(s, workspace)
            s.delete(self._datastore_row(s, ws, name))

    @staticmethod
    def _datastore_row(s: Session, ws: WorkspaceRow, name: str) -> DatastoreRow:
        row = s.scalar(
            select(DatastoreRow)
            .where(DatastoreRow.workspace_id == ws.id, DatastoreRow.name == name)
            .with_for_update()
        )
        if row is None:
            known = ", ".join(
                s.scalars(
                    select(DatastoreRow.name)
                    .where(DatastoreRow.workspace_id == ws.id)
                    .order_by(DatastoreRow.name)
                )
            )
            raise NotFoundError(
                f"datastore {name!r} not found in workspace {ws.name!r}; known: {known}"
            )
        return row

    # Secrets ----------------------------------------------------------------------
    def put_secret(
        self,
        workspace: str,
        name: str,
        ciphertext: bytes,
        key_id: str,
        *,
        description: str | None = None,
        managed_by: str | None = None,
    ) -> SecretInfo:
        """Create a secret, or replace its value (the version goes up by one)."""
        now = time.time()
        with self._session() as s:
            ws = self._workspace_row(s, workspace)
            row = s.scalar(
                select(SecretRow)
                .where(SecretRow.workspace_id == ws.id, SecretRow.name == name)
                .with_for_update()
            )
            if row is None:
                row = SecretRow(
                    workspace_id=ws.id,
                    name=name,
                    ciphertext=ciphertext,
                    key_id=key_id,
                    description=description,
                    managed_by=managed_by,
                    version=1,
                    created_at=now,
                    updated_at=now,
                )
                s.add(row)
            else:
                row.ciphertext = ciphertext
                row.key_id = key_id
                row.version += 1
                row.updated_at = now
                if description is not None:
                    row.description = description
                if managed_by is not None:
                    row.managed_by = managed_by
            s.flush()
            return _secret(row, ws.name)

    def get_secret(self, workspace: str, name: str) -> tuple[SecretInfo, bytes]:
        """A secret's metadata and its ciphertext (for the vault service to open)."""
        with self._session() as s:
            ws = self._workspace_row(s, workspace)
            row = s.scalar(
                select(SecretRow).where(SecretRow.workspace_id == ws.id, SecretRow.name == name)
            )
            if row is None:
                raise NotFoundError(f"secret {name!r} not found in workspace {workspace!r}")
            return _secret(row, ws.name), bytes(row.ciphertext)

    def list_secrets(self, workspace: str) -> list[SecretInfo]:
        with self._session() as s:
            ws = self._workspace_row(s, workspace)
            rows = s.scalars(
                select(SecretRow).where(SecretRow.workspace_id == ws.id).order_by(SecretRow.name)
            )
            return [_secret(r, ws.name) for r in rows]

    def delete_secret(self, workspace: str, name: str) -> bool:
        """Delete a secret; False when there was none by that name."""
        with self._session() as s:
            ws = self._workspace_row(s, workspace)
            result = s.execute(
                delete(SecretRow).where(SecretRow.workspace_id == ws.id, SecretRow.name == name)
            )
            return bool(getattr(result, "rowcount", 0))

    # Data assets ------------------------------------------------------------------
    def add_data_asset(self, asset: DataAsset) -> DataAsset:
        try:
            with self._session() as s:
                ws = self._workspace_row(s, asset.workspace)
                row = DataAssetRow(workspace_id=ws.id)
                _fill_data_row(row, asset)
                s.add(row)
                s.flush()
                return _data_asset(row, ws.name)
        except IntegrityError as exc:
            raise ConflictError(
                f"data asset {asset.name!r} version {asset.version!r} already exists; "
                "versions are immutable",
                hint="leave --version out to get the next one",
            ) from exc

    def list_data_assets(
        self, workspace: str, name: str | None = None, include_archived: bool = False
    ) -> list[DataAsset]:
        """Every version (of ``name``, or of all names), oldest first."""
        with self._session() as s:
            ws = self._workspace_row(s, workspace)
            stmt = select(DataAssetRow).where(DataAssetRow.workspace_id == ws.id)
            if name is not None:
                stmt = stmt.where(DataAssetRow.name == name)
            if not include_archived:
                stmt = stmt.where(DataAssetRow.archived.is_(False))
            rows = s.scalars(stmt.order_by(DataAssetRow.name, DataAssetRow.id))
            return [_data_asset(r, ws.name) for r in rows]

    def get_data_asset(self, workspace: str, name: str, version: str) -> DataAsset:
        with self._session() as s:
            ws = self._workspace_row(s, workspace)
            row = s.scalar(
                select(DataAssetRow).where(
                    DataAssetRow.workspace_id == ws.id,
                    DataAssetRow.name == name,
                    DataAssetRow.version == version,
                )
            )
            if row is None:
                known = list(
                    s.scalars(
                        select(DataAssetRow.version)
                        .where(DataAssetRow.workspace_id == ws.id, DataAssetRow.name == name)
                        .order_by(DataAssetRow.id)
                    )
                )
                raise NotFoundError(
                    f"data asset {name!r} version {version!r} not found in workspace "
                    f"{workspace!r}"
                    + (f"; versions: {', '.join(known)}" if known else "; no versions exist"),
                    details={"known": known},
                )
            return _data_asset(row, ws.name)

    def update_data_asset(
        self, workspace: str, name: str, version: str, change: Callable[[DataAsset], None]
    ) -> DataAsset:
        """Change the mutable fields (description, tags, properties, archived)."""
        with self._session() as s:
            ws = self._workspace_row(s, workspace)
            row = s.scalar(
                select(DataAssetRow)
                .where(
                    DataAssetRow.workspace_id == ws.id,
                    DataAssetRow.name == name,
                    DataAssetRow.version == version,
                )
                .with_for_update()
            )
            if row is None:
                raise NotFoundError(f"data asset {name!r} version {version!r} not found")
            asset = _data_asset(row, ws.name)
            change(asset)
            row.description = asset.description
            row.tags = dict(asset.tags)
            row.properties = dict(asset.properties)
            row.archived = asset.archived
            return asset

    def data_asset_versions(self, workspace: str, name: str) -> Iterator[str]:
        """Every version string of ``name``, archived ones included (for numbering)."""
        with self._session() as s:
            ws = self._workspace_row(s, workspace)
            yield from list(
                s.scalars(
                    select(DataAssetRow.version).where(
                        DataAssetRow.workspace_id == ws.id, DataAssetRow.name == name
                    )
                )
            )


def _datastore(row: DatastoreRow, workspace: str) -> Datastore:
    return Datastore(
        workspace=workspace,
        name=row.name,
        type=row.type,
        config=dict(row.config or {}),
        is_default=row.is_default,
        created_at=row.created_at,
        description=row.description,
        tags=dict(row.tags or {}),
        updated_at=row.updated_at,
    )


def _secret(row: SecretRow, workspace: str) -> SecretInfo:
    return SecretInfo(
        workspace=workspace,
        name=row.name,
        key_id=row.key_id,
        description=row.description,
        managed_by=row.managed_by,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _fill_data_row(row: DataAssetRow, asset: DataAsset) -> None:
    row.name = asset.name
    row.version = asset.version
    row.type = asset.type
    row.path = asset.path
    row.description = asset.description
    row.tags = dict(asset.tags)
    row.properties = dict(asset.properties)
    row.size_bytes = asset.size_bytes
    row.file_count = asset.file_count
    row.source = asset.source
    row.archived = asset.archived
    row.created_at = asset.created_at or time.time()


def _data_asset(row: DataAssetRow, workspace: str) -> DataAsset:
    source: dict[str, Any] | None = row.source
    return DataAsset(
        workspace=workspace,
        name=row.name,
        version=row.version,
        type=row.type,
        path=row.path,
        description=row.description,
        tags=dict(row.tags or {}),
        properties=dict(row.properties or {}),
        size_bytes=row.size_bytes,
        file_count=row.file_count,
        source=source,
        archived=row.archived,
        created_at=row.created_at,
    )
