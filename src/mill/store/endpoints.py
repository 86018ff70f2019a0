"""Store queries for online endpoints and their deployments.

A mixin of :class:`mill.store.sql.SqlStore`, like :mod:`mill.store.models`. Endpoint names
are unique in the home (one gateway serves them all), so lookups by name need no workspace;
the workspace is checked by the services where a caller names one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mill.domain.entities import OnlineDeployment, OnlineEndpoint
from mill.errors import ConflictError, NotFoundError
from mill.store.tables import OnlineDeploymentRow, OnlineEndpointRow, WorkspaceRow

__all__ = ["EndpointStoreMixin"]


class EndpointStoreMixin:
    # Provided by SqlStore.
    _session: Callable[[], AbstractContextManager[Session]]
    _workspace_row: Callable[[Session, str], WorkspaceRow]
    _workspace_name: Callable[[Session, int], str]

    # Endpoints ---------------------------------------------------------------------
    def create_endpoint(self, endpoint: OnlineEndpoint) -> OnlineEndpoint:
        now = time.time()
        try:
            with self._session() as s:
                ws = self._workspace_row(s, endpoint.workspace)
                if s.scalar(
                    select(OnlineEndpointRow.id).where(OnlineEndpointRow.name == endpoint.name)
                ):
                    raise ConflictError(f"online endpoint {endpoint.name!r} already exists")
                row = OnlineEndpointRow(
                    workspace_id=ws.id,
                    name=endpoint.name,
                    auth_mode=endpoint.auth_mode,
                    description=endpoint.description,
                    tags=dict(endpoint.tags),
                    properties=dict(endpoint.properties),
                    traffic=dict(endpoint.traffic),
                    mirror_traffic=dict(endpoint.mirror_traffic),
                    created_at=now,
                    updated_at=now,
                )
                s.add(row)
                s.flush()
                return _endpoint(row, ws.name)
        except IntegrityError:
            raise ConflictError(f"online endpoint {endpoint.name!r} already exists") from None

    def get_endpoint(self, name: str) -> OnlineEndpoint:
        with self._session() as s:
            row = self._endpoint_row(s, name)
            return _endpoint(row, self._workspace_name(s, row.workspace_id))

    def list_endpoints(self, workspace: str | None = None) -> list[OnlineEndpoint]:
        with self._session() as s:
            query = select(OnlineEndpointRow, WorkspaceRow.name).join(
                WorkspaceRow, WorkspaceRow.id == OnlineEndpointRow.workspace_id
            )
            if workspace is not None:
                query = query.where(WorkspaceRow.name == workspace)
            rows = s.execute(query.order_by(OnlineEndpointRow.name)).all()
            return [_endpoint(row, ws) for row, ws in rows]

    def update_endpoint(
        self, name: str, change: Callable[[OnlineEndpoint], None]
    ) -> OnlineEndpoint:
        """Apply ``change`` under a row lock; what it sets on the entity is saved."""
        with self._session() as s:
            row = self._endpoint_row(s, name, lock=True)
            endpoint = _endpoint(row, self._workspace_name(s, row.workspace_id))
            change(endpoint)
            row.auth_mode = endpoint.auth_mode
            row.description = endpoint.description
            row.tags = dict(endpoint.tags)
            row.properties = dict(endpoint.properties)
            row.traffic = dict(endpoint.traffic)
            row.mirror_traffic = dict(endpoint.mirror_traffic)
            row.updated_at = endpoint.updated_at = time.time()
            return endpoint

    def delete_endpoint(self, name: str) -> None:
        with self._session() as s:
            s.delete(self._endpoint_row(s, name))

    # Deployments -------------------------------------------------------------------
    def create_deployment(self, deployment: OnlineDeployment) -> OnlineDeployment:
        now = time.time()
        try:
            with self._session() as s:
                endpoint = self._endpoint_row(s, deployment.endpoint)
                if self._deployment_row(s, endpoint, deployment.name, required=False):
                    raise ConflictError(
                        f"deployment {deployment.name!r} of endpoint {deployment.endpoint!r} "
                        "already exists",
                        hint="change it with: mill online-deployment update",
                    )
                row = OnlineDeploymentRow(
                    endpoint_id=endpoint.id,
                    name=deployment.name,
                    kind=deployment.kind,
                    spec=deployment.spec,
                    environment_key=deployment.environment_key,
                    environment_info=deployment.environment_info,
                    state=deployment.state,
                    error=deployment.error,
                    generation=1,
                    created_at=now,
                    updated_at=now,
                )
                s.add(row)
                s.flush()
                return _deployment(row, endpoint.name)
        except IntegrityError:
            raise ConflictError(
                f"deployment {deployment.name!r} of endpoint {deployment.endpoint!r} already exists"
            ) from None

    def get_deployment(self, endpoint: str, name: str) -> OnlineDeployment:
        with self._session() as s:
            row = self._deployment_row(s, self._endpoint_row(s, endpoint), name)
            assert row is not None
            return _deployment(row, endpoint)

    def list_deployments(self, endpoint: str | None = None) -> list[OnlineDeployment]:
        """One endpoint's deployments, or every deployment in the home."""
        with self._session() as s:
            query = select(OnlineDeploymentRow, OnlineEndpointRow.name).join(
                OnlineEndpointRow, OnlineEndpointRow.id == OnlineDeploymentRow.endpoint_id
            )
            if endpoint is not None:
                query = query.where(
                    OnlineDeploymentRow.endpoint_id == self._endpoint_row(s, endpoint).id
                )
            rows = s.execute(query.order_by(OnlineEndpointRow.name, OnlineDeploymentRow.name)).all()
            return [_deployment(row, name) for row, name in rows]

    def update_deployment(
        self, endpoint: str, name: str, change: Callable[[OnlineDeployment], None]
    ) -> OnlineDeployment:
        with self._session() as s:
            row = self._deployment_row(s, self._endpoint_row(s, endpoint), name, lock=True)
            assert row is not None
            deployment = _deployment(row, endpoint)
            change(deployment)
            row.kind = deployment.kind
            row.spec = deployment.spec
            row.environment_key = deployment.environment_key
            row.environment_info = deployment.environment_info
            row.state = deployment.state
            row.error = deployment.error
            row.generation = deployment.generation
            row.updated_at = deployment.updated_at = time.time()
            return deployment

    def delete_deployment(self, endpoint: str, name: str) -> None:
        with self._session() as s:
            row = self._deployment_row(s, self._endpoint_row(s, endpoint), name)
            s.delete(row)

    # Rows --------------------------------------------------------------------------
    def _endpoint_row(self, s: Session, name: str, *, lock: bool = False) -> OnlineEndpointRow:
        query = select(OnlineEndpointRow).where(OnlineEndpointRow.name == name)
        row = s.scalar(query.with_for_update() if lock else query)
        if row is None:
            known = s.scalars(select(OnlineEndpointRow.name).order_by(OnlineEndpointRow.name)).all()
            raise NotFoundError(
                f"online endpoint {name!r} not found",
                hint="list them with: mill online-endpoint list",
                details={"known": list(known)},
            )
        return row

    def _deployment_row(
        self,
        s: Session,
        endpoint: OnlineEndpointRow,
        name: str,
        *,
        required: bool = True,
        lock: bool = False,
    ) -> OnlineDeploymentRow | None:
        query = select(OnlineDeploymentRow).where(
            OnlineDeploymentRow.endpoint_id == endpoint.id, OnlineDeploymentRow.name == name
        )
        row = s.scalar(query.with_for_update() if lock else query)
        if row is None and required:
            known = s.scalars(
                select(OnlineDeploymentRow.name).where(
                    OnlineDeploymentRow.endpoint_id == endpoint.id
                )
            ).all()
            raise NotFoundError(
                f"deployment {name!r} not found in endpoint {endpoint.name!r}",
                hint=f"its deployments: {', '.join(sorted(known)) or 'none yet'}",
                details={"known": sorted(known)},
            )
        return row


def _endpoint(row: OnlineEndpointRow, workspace: str) -> OnlineEndpoint:
    return OnlineEndpoint(
        workspace=workspace,
        name=row.name,
        auth_mode=row.auth_mode,
        description=row.description,
        tags=dict(row.tags or {}),
        properties=dict(row.properties or {}),
        traffic={k: int(v) for k, v in (row.traffic or {}).items()},
        mirror_traffic={k: int(v) for k, v in (row.mirror_traffic or {}).items()},
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _deployment(row: OnlineDeploymentRow, endpoint: str) -> OnlineDeployment:
    return OnlineDeployment(
        endpoint=endpoint,
        name=row.name,
        kind=row.kind,
        spec=dict(row.spec or {}),
        state=row.state,
        error=row.error,
        environment_key=row.environment_key,
        environment_info=dict(row.environment_info or {}),
        generation=row.generation,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
