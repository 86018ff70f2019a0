"""The entities the services work with, independent of tables and wire formats."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mill.domain.status import JobStatus

__all__ = [
    "Compute",
    "DataAsset",
    "Datastore",
    "EnvironmentAsset",
    "Job",
    "ModelVersion",
    "OnlineDeployment",
    "OnlineEndpoint",
    "RegisteredModel",
    "SecretInfo",
    "StatusChange",
    "Workspace",
]


@dataclass
class Workspace:
    name: str
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    created_at: float = 0.0
    id: int | None = None


@dataclass
class Datastore:
    workspace: str
    name: str
    type: str
    config: dict[str, Any] = field(default_factory=dict)
    is_default: bool = False
    created_at: float = 0.0
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    updated_at: float | None = None


@dataclass
class Compute:
    workspace: str
    name: str
    type: str
    max_instances: int
    description: str | None = None
    created_at: float = 0.0


@dataclass
class StatusChange:
    status: JobStatus
    at: float

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status.value, "at": self.at}


@dataclass
class Job:
    """A job as the services see it. ``spec`` is the validated CommandJob as JSON."""

    workspace: str
    name: str
    type: str
    spec: dict[str, Any]
    compute: str
    experiment_name: str
    status: JobStatus = JobStatus.NOT_STARTED
    display_name: str | None = None
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)
    slots: int = 1
    created_at: float = 0.0
    started_at: float | None = None
    ended_at: float | None = None
    history: list[StatusChange] = field(default_factory=list)
    exit_code: int | None = None
    error: dict[str, Any] | None = None
    handle: dict[str, Any] | None = None  # the runner's process handle (pid, start time)
    run_dir: str | None = None
    snapshot_id: str | None = None
    callback_token_hash: str | None = None
    archived: bool = False
    environment_key: str | None = None
    environment_info: dict[str, Any] | None = None
    id: int | None = None

    @property
    def stored_id(self) -> int:
        """The store's id; every job read from the store has one."""
        if self.id is None:
            raise ValueError(f"job {self.name!r} has not been stored yet")
        return self.id

    def status_at(self, status: JobStatus) -> float | None:
        for change in self.history:
            if change.status == status:
                return change.at
        return None


@dataclass
class EnvironmentAsset:
    """A named, versioned environment. ``definition`` holds no local paths: conda content is
    inline and a build context is a code snapshot, so any machine can build it."""

    workspace: str
    name: str
    version: str
    definition: dict[str, Any]
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    archived: bool = False
    created_at: float = 0.0


@dataclass
class SecretInfo:
    """What the store says about a vault secret; the value never leaves the vault service."""

    workspace: str
    name: str
    key_id: str
    description: str | None = None
    managed_by: str | None = None
    version: int = 1
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass
class DataAsset:
    """One immutable version of a data asset: a typed pointer to a file or folder."""

    workspace: str
    name: str
    version: str
    type: str  # uri_file | uri_folder | mltable
    path: str  # azureml://datastores/..., https://, wasbs://, abfss://, s3://
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)
    size_bytes: int | None = None
    file_count: int | None = None
    source: dict[str, Any] | None = None  # {"kind": "local_upload"|"pointer"|"job_output", ...}
    archived: bool = False
    created_at: float = 0.0


@dataclass
class RegisteredModel:
    """A model name in the registry, with its aliases (alias -> version)."""

    workspace: str
    name: str
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass
class ModelVersion:
    """One immutable version of a model (custom_model, mlflow_model or triton_model)."""

    workspace: str
    name: str
    version: str
    type: str
    path: str  # azureml://datastores/<ds>/paths/<p>: the registry's own copy of the files
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)
    flavors: dict[str, Any] | None = None  # what MLmodel / config.pbtxt say
    source: dict[str, Any] | None = None  # {"kind": "local"|"job_output"|"run"|..., ...}
    lineage: dict[str, Any] | None = None  # {"job": ..., "inputs": {...}, "parent": ...}
    run_id: str | None = None
    size_bytes: int | None = None
    file_count: int | None = None
    archived: bool = False
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass
class OnlineEndpoint:
    """A stable scoring address in front of deployments, with its auth mode and traffic."""

    workspace: str
    name: str
    auth_mode: str = "key"  # key | aml_token
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)
    traffic: dict[str, int] = field(default_factory=dict)
    mirror_traffic: dict[str, int] = field(default_factory=dict)
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass
class OnlineDeployment:
    """A model served by replicas in its own environment, behind an endpoint.

    ``state`` is Azure's provisioning state: Creating, Updating, Succeeded, Failed, Deleting.
    """

    endpoint: str
    name: str
    kind: str  # code | mlflow | onnx | triton
    spec: dict[str, Any]
    state: str = "Creating"
    error: str | None = None
    environment_key: str | None = None
    environment_info: dict[str, Any] = field(default_factory=dict)
    generation: int = 1
    created_at: float = 0.0
    updated_at: float = 0.0
