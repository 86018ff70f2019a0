"""Online endpoint YAML (yaml-reference §16.1) and the ``--traffic`` option's text.

An endpoint is a name, how callers authenticate, and the share of requests each of its
deployments gets (``traffic``) or sees a copy of (``mirror_traffic``). Deployments are
in :mod:`.online_deployment`; this module is the front door for both.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from mill.errors import SpecError, SpecIssue

from .fields import NonNegativeCount, OptionalText, TextMap, choice, empty_if_null
from .online_deployment import (
    CodeConfiguration,
    DeploymentModel,
    OnlineDeploymentSpec,
    load_online_deployment,
    parse_online_deployment,
    validate_online_spec,
)
from .online_settings import (
    ONLINE_NAME,
    ONLINE_NAME_RULE,
    DataCollection,
    DataCollector,
    DeploymentName,
    EndpointName,
    OnlineType,
    OnOff,
    ProbeSettings,
    RequestSettings,
    ScaleSettings,
    online_type,
)
from .overrides import apply_overrides_tracked
from .problems import Problem, fail, problem, with_prefix
from .yamldoc import YamlDocument, load_yaml

__all__ = [
    "AUTH_MODES",
    "ONLINE_NAME_RULE",
    "CodeConfiguration",
    "DataCollection",
    "DataCollector",
    "DeploymentModel",
    "OnlineDeploymentSpec",
    "OnlineEndpointSpec",
    "ProbeSettings",
    "RequestSettings",
    "ScaleSettings",
    "load_online_deployment",
    "load_online_endpoint",
    "parse_online_deployment",
    "parse_online_endpoint",
    "parse_traffic",
]

AUTH_MODES: tuple[str, ...] = ("key", "aml_token")
_MAX_MIRROR = 50  # Azure mirrors at most half of the live traffic
_TRAFFIC_TEXT = "name=percent pairs separated by spaces or commas, e.g. 'blue=90 green=10'"
Percent = Annotated[NonNegativeCount, Field(le=100)]
Traffic = Annotated[dict[DeploymentName, Percent], BeforeValidator(empty_if_null)]


def _no_aad_token(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() == "aad_token":
        fail(
            problem(
                "aad_token is not supported by Mill: use key or aml_token",
                value=value,
                allowed=", ".join(AUTH_MODES),
            )
        )
    return value


def _traffic_problems(traffic: Mapping[str, int], *, mirror: bool) -> list[Problem]:
    """Azure's rules for a whole traffic map; paths are relative to the map."""
    if not mirror:
        total = sum(traffic.values())
        if total <= 100:
            return []
        return [problem(f"the percentages add up to {total}", allowed="a total of at most 100")]
    if len(traffic) > 1:
        return [
            problem(
                "traffic can be mirrored to one deployment only",
                value=dict(traffic),
                allowed="one deployment=percent",
            )
        ]
    return [
        problem(
            f"at most {_MAX_MIRROR} percent can be mirrored (Azure's limit)",
            path=(name,),
            value=share,
            allowed=f"an integer from 0 to {_MAX_MIRROR}",
        )
        for name, share in traffic.items()
        if share > _MAX_MIRROR
    ]


class OnlineEndpointSpec(BaseModel):
    """An online endpoint: its name, how callers authenticate, and where traffic goes."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_: OptionalText = Field(default=None, alias="$schema")
    name: EndpointName
    type: OnlineType = "managed"
    auth_mode: Annotated[
        Literal["key", "aml_token"], choice(AUTH_MODES), BeforeValidator(_no_aad_token)
    ] = "key"
    description: OptionalText = None
    tags: TextMap = Field(default_factory=dict)
    properties: TextMap = Field(default_factory=dict)
    traffic: Traffic = Field(default_factory=dict)
    mirror_traffic: Traffic = Field(default_factory=dict)
    # Accepted so Azure's files load; see `notes` for why they change nothing here.
    identity: dict[str, Any] | None = None
    public_network_access: OnOff = None
    compute: OptionalText = None

    @model_validator(mode="before")
    @classmethod
    def _type(cls, data: Any) -> Any:
        return online_type("kubernetesonlineendpoint", data, compute_means_k8s=True)

    @model_validator(mode="after")
    def _check(self) -> OnlineEndpointSpec:
        found = with_prefix(("traffic",), _traffic_problems(self.traffic, mirror=False))
        found += with_prefix(
            ("mirror_traffic",), _traffic_problems(self.mirror_traffic, mirror=True)
        )
        found += [
            problem(
                "a deployment cannot take live and mirrored traffic at once (Azure's rule)",
                path=("mirror_traffic", name),
                value=share,
                allowed=f"0, or live traffic 0 for {name}",
            )
            for name, share in self.mirror_traffic.items()
            if share and self.traffic.get(name)
        ]
        if found:
            fail(*found)
        return self

    @property
    def notes(self) -> list[str]:
        """What this endpoint asks for that Mill accepts but does not act on."""
        notes: list[str] = []
        if self.identity is not None:
            notes.append(
                "identity is accepted and ignored: local replicas run as the server's user"
            )
        if self.public_network_access is not None:
            notes.append(
                "public_network_access is accepted and ignored: the endpoint answers "
                "wherever the Mill server listens"
            )
        if self.compute is not None:
            notes.append(
                "compute is accepted and ignored: replicas run on the Mill server's own "
                "machines, not on a Kubernetes cluster"
            )
        return notes


def parse_traffic(text: str, *, mirror: bool = False) -> dict[str, int]:
    """``--traffic "blue=90 green=10"`` (or ``--mirror-traffic "green=10"``) as a mapping.

    Commas separate pairs as well as spaces. Raises :class:`SpecError` naming the option.
    """
    option = "--mirror-traffic" if mirror else "--traffic"
    issues: list[SpecIssue] = []
    traffic: dict[str, int] = {}

    def bad(message: str, value: str, allowed: str) -> None:
        issues.append(SpecIssue(message, option, value=value, has_value=True, allowed=allowed))

    parts = [p for p in re.split(r"[\s,]+", text.strip()) if p]
    if not parts:
        bad("no deployments given", text, _TRAFFIC_TEXT)
    for part in parts:
        name, sep, share = part.partition("=")
        if not sep or not name:
            bad("not name=percent", part, _TRAFFIC_TEXT)
        elif not re.fullmatch(r"[0-9]+", share) or int(share) > 100:
            bad(f"not a percent for {name}", part, "an integer from 0 to 100")
        elif name in traffic:
            bad(f"{name} is given twice", part, "each deployment once")
        elif not ONLINE_NAME.fullmatch(name):
            bad("invalid deployment name", part, ONLINE_NAME_RULE)
        else:
            traffic[name] = int(share)
    if not issues:
        for found in _traffic_problems(traffic, mirror=mirror):
            value = f"{found.path[0]}={found.value}" if found.path else text
            bad(found.message, value, found.allowed or _TRAFFIC_TEXT)
    if issues:
        raise SpecError(issues)
    return traffic


def load_online_endpoint(path: Path, overrides: Sequence[str] = ()) -> OnlineEndpointSpec:
    """An online endpoint YAML file with ``--set`` overrides; issues name the file and line."""
    doc = load_yaml(path)
    data, origins = apply_overrides_tracked(doc.data, overrides)
    return validate_online_spec(OnlineEndpointSpec, data, doc, None, origins)


def parse_online_endpoint(
    data: Mapping[str, Any], source: YamlDocument | None = None
) -> OnlineEndpointSpec:
    """Validate an online endpoint given as a mapping; ``source`` locates problems."""
    return validate_online_spec(OnlineEndpointSpec, data, source, None, {})
