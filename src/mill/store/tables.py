"""Table definitions. Timestamps are epoch seconds (float) to keep SQLite and PostgreSQL alike."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Base",
    "ComputeRow",
    "DataAssetRow",
    "DatastoreRow",
    "EnvironmentRow",
    "JobRow",
    "ModelAliasRow",
    "ModelVersionRow",
    "RegisteredModelRow",
    "SecretRow",
    "SnapshotRow",
    "WorkspaceRow",
]


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class WorkspaceRow(Base):
    __tablename__ = "workspaces"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[float] = mapped_column(Float)


class DatastoreRow(Base):
    __tablename__ = "datastores"
    __table_args__ = (UniqueConstraint("workspace_id", "name", name="uq_datastores_ws_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(64))
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float] = mapped_column(Float)
    # Since 0004. Credentials are never here: ``config["credentials"]`` names a vault secret.
    description: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    updated_at: Mapped[float | None] = mapped_column(Float)


class ComputeRow(Base):
    __tablename__ = "computes"
    __table_args__ = (UniqueConstraint("workspace_id", "name", name="uq_computes_ws_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(64))
    max_instances: Mapped[int] = mapped_column(Integer)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)


class JobRow(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("workspace_id", "name", name="uq_jobs_ws_name"),
        Index("ix_jobs_status", "status"),
        Index("ix_jobs_ws_experiment", "workspace_id", "experiment_name"),
    )

    # The autoincrementing id also orders the queue: first submitted, first started.
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32))
    compute: Mapped[str] = mapped_column(String(255))
    experiment_name: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    tags: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    slots: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float)
    ended_at: Mapped[float | None] = mapped_column(Float)
    history: Mapped[list[Any]] = mapped_column(JSON, default=list)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    handle: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    run_dir: Mapped[str | None] = mapped_column(Text)
    snapshot_id: Mapped[str | None] = mapped_column(String(64))
    callback_token_hash: Mapped[str | None] = mapped_column(String(64))
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    # The environment as the job resolved it (definition, key, build facts); see 0002.
    environment_key: Mapped[str | None] = mapped_column(String(64))
    environment_info: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class SnapshotRow(Base):
    """A code snapshot: a manifest of files by content hash, stored once per workspace."""

    __tablename__ = "snapshots"
    __table_args__ = (UniqueConstraint("workspace_id", "digest", name="uq_snapshots_ws_digest"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    digest: Mapped[str] = mapped_column(String(64))
    file_count: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[float] = mapped_column(Float)


class EnvironmentRow(Base):
    """A named, versioned environment asset; ``definition`` is portable (no local paths)."""

    __tablename__ = "environments"
    __table_args__ = (
        UniqueConstraint("workspace_id", "name", "version", name="uq_environments_ws_name_version"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    version: Mapped[str] = mapped_column(String(64))
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    description: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float] = mapped_column(Float)


class SecretRow(Base):
    """A vault secret: the value only as AES-GCM ciphertext (nonce + ciphertext + tag)."""

    __tablename__ = "secrets"
    __table_args__ = (UniqueConstraint("workspace_id", "name", name="uq_secrets_ws_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[str] = mapped_column(String(64))  # which master key sealed it
    description: Mapped[str | None] = mapped_column(Text)
    managed_by: Mapped[str | None] = mapped_column(String(255))  # e.g. "datastore:s3data"
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class DataAssetRow(Base):
    """A version of a data asset: a pointer (``path``) to a file or folder on storage."""

    __tablename__ = "data_assets"
    __table_args__ = (
        UniqueConstraint("workspace_id", "name", "version", name="uq_data_assets_ws_name_version"),
        Index("ix_data_assets_ws_name", "workspace_id", "name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    version: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(32))
    path: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    file_count: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # local upload, pointer, job
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float] = mapped_column(Float)


class RegisteredModelRow(Base):
    """A model name in the registry (MLflow's registered model): description, tags."""

    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("workspace_id", "name", name="uq_models_ws_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class ModelVersionRow(Base):
    """One immutable version of a model: its files (``path``), format, lineage, source."""

    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint("model_id", "version", name="uq_model_versions_model_version"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    version: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(32))  # custom_model | mlflow_model | triton_model
    path: Mapped[str] = mapped_column(Text)  # azureml://datastores/... of the stored files
    description: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    flavors: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # MLmodel / Triton summary
    source: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # where the files came from
    lineage: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # job, its inputs, parent model
    run_id: Mapped[str | None] = mapped_column(String(255))  # the MLflow run, if any
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    file_count: Mapped[int | None] = mapped_column(Integer)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class ModelAliasRow(Base):
    """A named pointer at a version (MLflow aliases, Azure labels other than latest)."""

    __tablename__ = "model_aliases"
    __table_args__ = (UniqueConstraint("model_id", "alias", name="uq_model_aliases_model_alias"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    alias: Mapped[str] = mapped_column(String(255))
    version: Mapped[str] = mapped_column(String(64))


class OnlineEndpointRow(Base):
    """An online endpoint: its auth mode and traffic. Names are unique in the home, since
    the one gateway serves every workspace's endpoints at ``/endpoints/<name>/``."""

    __tablename__ = "online_endpoints"
    __table_args__ = (UniqueConstraint("name", name="uq_online_endpoints_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    auth_mode: Mapped[str] = mapped_column(String(32))
    description: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    traffic: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    mirror_traffic: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class OnlineDeploymentRow(Base):
    """A deployment of an endpoint: its validated spec and where its rollout stands."""

    __tablename__ = "online_deployments"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "name", name="uq_online_deployments_endpoint_name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("online_endpoints.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # code | mlflow | onnx | triton
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    environment_key: Mapped[str | None] = mapped_column(String(128))
    environment_info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(32))  # provisioning state
    error: Mapped[str | None] = mapped_column(Text)
    generation: Mapped[int] = mapped_column(Integer, default=1)  # bumped by each update
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


# The tracking tables (experiments, runs, metrics...) share this metadata and its migrations.
from mill.store import tracking_tables as _tracking_tables  # noqa: E402

del _tracking_tables
