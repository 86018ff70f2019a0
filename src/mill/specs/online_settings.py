"""Fields shared by online endpoints and deployments, and a deployment's tuning blocks.

The tuning blocks (yaml-reference §16.2) carry Azure's defaults: ``request_settings``,
``liveness_probe``/``readiness_probe``, ``scale_settings`` and ``data_collector``; times
are in seconds unless the field name says ``_ms``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from .fields import Count, NonNegativeCount, OptionalText, Seconds, choice, empty_if_null
from .problems import Problem, fail, problem
from .references import looks_like_placeholder

__all__ = [
    "MAX_REQUEST_TIMEOUT_MS",
    "ONLINE_NAME",
    "ONLINE_NAME_RULE",
    "DataCollection",
    "DataCollector",
    "DeploymentName",
    "EndpointName",
    "OnOff",
    "OnlineType",
    "ProbeSettings",
    "RequestSettings",
    "ScaleSettings",
    "online_name",
    "online_type",
]

MAX_REQUEST_TIMEOUT_MS = 180_000  # Azure's upper limit for managed deployments
_SCALE_TYPES = ("default", "target_utilization")
_ROLLING_RATES = ("minute", "hour", "day", "month", "year")
ONLINE_NAME_RULE = (
    "3-32 letters, digits and '-', starting with a letter and not ending with '-' (Azure's rule)"
)
ONLINE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{1,30}[A-Za-z0-9]")
_ON_OFF = ("enabled", "disabled")
_TARGET_ONLY = (
    "min_instances",
    "max_instances",
    "polling_interval",
    "target_utilization_percentage",
)


def online_name(what: str) -> Callable[[Any], Any]:
    """A validator for endpoint and deployment names (Azure's rule, ``ONLINE_NAME_RULE``)."""

    def check(value: Any) -> Any:
        if value is None or (isinstance(value, str) and ONLINE_NAME.fullmatch(value)):
            return value
        message = f"invalid {what}"
        if isinstance(value, str) and looks_like_placeholder(value):
            message = f"a placeholder, not a {what}: replace it (for example with --set)"
        fail(problem(message, value=value, allowed=ONLINE_NAME_RULE))

    return check


def online_type(schema_tail: str, data: Any, *, compute_means_k8s: bool) -> Any:
    """``type`` left out: kubernetes when the ``$schema`` (or a ``compute``) says so."""
    if not isinstance(data, Mapping) or data.get("type") is not None:
        return data
    schema = data.get("$schema")
    on_k8s = isinstance(schema, str) and schema_tail in schema.lower()
    if on_k8s or (compute_means_k8s and data.get("compute")):
        return {**data, "type": "kubernetes"}
    return data


EndpointName = Annotated[str, AfterValidator(online_name("endpoint name"))]
DeploymentName = Annotated[str, AfterValidator(online_name("deployment name"))]
OnlineType = Annotated[Literal["managed", "kubernetes"], choice(("managed", "kubernetes"))]
OnOff = Annotated[Literal["enabled", "disabled"] | None, choice(_ON_OFF)]


class RequestSettings(BaseModel):
    """How long a scoring request may take and how many one replica serves at once."""

    model_config = ConfigDict(extra="forbid")

    request_timeout_ms: Annotated[Count, Field(le=MAX_REQUEST_TIMEOUT_MS)] = 5000
    max_concurrent_requests_per_instance: Count = 1
    max_queue_wait_ms: NonNegativeCount = 500


class ProbeSettings(BaseModel):
    """A liveness or readiness probe: ``GET /`` on the replica, as Azure's server answers."""

    model_config = ConfigDict(extra="forbid")

    initial_delay: NonNegativeCount = 10
    period: Seconds = 10
    timeout: Seconds = 2
    failure_threshold: Count = 30
    success_threshold: Count = 1


class ScaleSettings(BaseModel):
    """Fixed size (``default``: ``instance_count`` replicas) or target-utilisation scaling.

    With ``target_utilization`` the unset fields get Azure's defaults: at least one
    replica, at most ``min_instances``, polled every second, aiming at 70% busy.
    """

    model_config = ConfigDict(extra="forbid")

    type: Annotated[
        Literal["default", "target_utilization"],
        choice(_SCALE_TYPES, {"targetutilization": "target_utilization"}),
    ] = "default"
    min_instances: Count | None = None
    max_instances: Count | None = None
    polling_interval: Seconds | None = None
    target_utilization_percentage: Annotated[Count, Field(le=100)] | None = None

    @model_validator(mode="after")
    def _check(self) -> ScaleSettings:
        if self.type == "default":
            wrong = [
                problem(
                    "only for target_utilization scaling",
                    path=(name,),
                    value=getattr(self, name),
                    allowed="type: target_utilization with this field, or no such field",
                )
                for name in _TARGET_ONLY
                if getattr(self, name) is not None
            ]
            if wrong:
                fail(*wrong)
            return self
        if self.min_instances is None:
            self.min_instances = 1
        if self.max_instances is None:
            self.max_instances = self.min_instances
        if self.polling_interval is None:
            self.polling_interval = 1
        if self.target_utilization_percentage is None:
            self.target_utilization_percentage = 70
        if self.min_instances > self.max_instances:
            fail(
                problem(
                    f"more than max_instances ({self.max_instances})",
                    path=("min_instances",),
                    value=self.min_instances,
                    allowed=f"an integer between 1 and max_instances ({self.max_instances})",
                )
            )
        return self


def _flag(value: Any) -> Any:
    # Azure writes `enabled: 'true'` (a string); YAML booleans are accepted too.
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    fail(problem(value=value, allowed="true or false (or the strings 'true', 'false')"))


class DataCollection(BaseModel):
    """One stream of collected data: ``model_inputs``, ``model_outputs`` or a custom one."""

    model_config = ConfigDict(extra="forbid")

    enabled: Annotated[bool, BeforeValidator(_flag)] = False
    data: dict[str, Any] | None = None  # the data asset to write to: {name, path, version}
    client_id: OptionalText = None


class DataCollector(BaseModel):
    """What a deployment records of its requests and responses, and how often it rolls."""

    model_config = ConfigDict(extra="forbid")

    collections: Annotated[dict[str, DataCollection], BeforeValidator(empty_if_null)] = Field(
        default_factory=dict
    )
    sampling_rate: Annotated[float, Field(ge=0, le=1)] = 1.0
    rolling_rate: Annotated[
        Literal["minute", "hour", "day", "month", "year"], choice(_ROLLING_RATES)
    ] = "hour"
    request_logging: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _some_collection(self) -> DataCollector:
        if not self.collections:
            found: Problem = problem(
                "no collections to record",
                path=("collections",),
                allowed="a mapping such as {model_inputs: {enabled: 'true'}, "
                "model_outputs: {enabled: 'true'}}",
            )
            fail(found)
        return self
