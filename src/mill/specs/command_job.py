"""The command job (yaml-reference §7) as a typed model: the shape the client sends the server.

``CommandJob.model_dump(mode="json", by_alias=True, exclude_none=True)`` validates again
to the same job, so the server re-checks exactly what the client checked.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .context import context_of
from .environment import check_environment
from .expressions import check_command
from .fields import (
    Count,
    NonNegativeCount,
    OptionalText,
    Seconds,
    TextMap,
    choice,
    empty_if_null,
    name_like,
)
from .inputs import JobInput, JobOutput
from .problems import Problems, fail, problem
from .references import classify_path, looks_like_placeholder, normalize_compute

__all__ = ["CommandJob", "Distribution", "Limits", "Resources"]

DistributionType = Literal["pytorch", "tensorflow", "mpi"]
_DISTRIBUTION_FIELDS: dict[str, tuple[str, ...]] = {
    "pytorch": ("process_count_per_instance",),
    "mpi": ("process_count_per_instance",),
    "tensorflow": ("worker_count", "parameter_server_count"),
}
_IO_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_IO_NAME_ALLOWED = "letters, digits and underscores, not starting with a digit"
_JOB_NAME = r"[A-Za-z0-9_][A-Za-z0-9_\-]{0,254}"
_JOB_NAME_ALLOWED = "letters, digits, '-' and '_' (at most 255, not starting with '-')"

IoName = Annotated[str, AfterValidator(name_like(_IO_NAME, "name", _IO_NAME_ALLOWED))]


class Resources(BaseModel):
    """How many nodes a job runs on, and of what kind."""

    model_config = ConfigDict(extra="forbid")

    instance_count: Count = 1
    instance_type: OptionalText = None
    shm_size: OptionalText = None
    properties: Annotated[dict[str, Any], BeforeValidator(empty_if_null)] = Field(
        default_factory=dict
    )


class Distribution(BaseModel):
    """How the processes of a distributed job find each other (§15)."""

    model_config = ConfigDict(extra="forbid")

    type: Annotated[DistributionType, choice(get_args(DistributionType))]
    process_count_per_instance: Count | None = None
    worker_count: NonNegativeCount | None = None
    parameter_server_count: NonNegativeCount | None = None

    @model_validator(mode="after")
    def _fields_of_type(self) -> Distribution:
        allowed = _DISTRIBUTION_FIELDS[self.type]
        wrong = [
            problem(
                f"not a setting of {self.type} distribution",
                path=(name,),
                value=getattr(self, name),
                allowed=", ".join(("type", *allowed)),
            )
            for names in _DISTRIBUTION_FIELDS.values()
            for name in names
            if name not in allowed and getattr(self, name) is not None
        ]
        if wrong:
            fail(*{p.path: p for p in wrong}.values())
        return self


class Limits(BaseModel):
    """Limits of a command job; ``timeout`` is in seconds."""

    model_config = ConfigDict(extra="forbid")

    timeout: Seconds | None = None


class CommandJob(BaseModel):
    """An Azure ML CLI v2 command job, validated, with local paths made absolute."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    unsupported_types: ClassVar[tuple[str, ...]] = (
        "sweep",
        "pipeline",
        "parallel",
        "spark",
        "automl",
        "finetuning",
        "import",
    )

    schema_: OptionalText = Field(default=None, alias="$schema")
    type: Annotated[Literal["command"], choice(("command",))] = "command"
    name: Annotated[
        str | None, AfterValidator(name_like(_JOB_NAME, "job name", _JOB_NAME_ALLOWED))
    ] = None
    display_name: OptionalText = None
    experiment_name: OptionalText = None
    description: OptionalText = None
    tags: TextMap = Field(default_factory=dict)
    properties: TextMap = Field(default_factory=dict)
    code: OptionalText = None
    inputs: Annotated[dict[IoName, JobInput], BeforeValidator(empty_if_null)] = Field(
        default_factory=dict
    )
    outputs: Annotated[dict[IoName, JobOutput], BeforeValidator(empty_if_null)] = Field(
        default_factory=dict
    )
    # Declared after inputs and outputs: its validator checks names against them.
    command: str
    environment: str | dict[str, Any] | None = None
    environment_variables: TextMap = Field(default_factory=dict)
    compute: OptionalText = None
    resources: Annotated[Resources, BeforeValidator(lambda v: {} if v is None else v)] = Field(
        default_factory=Resources
    )
    distribution: Distribution | None = None
    limits: Annotated[Limits, BeforeValidator(lambda v: {} if v is None else v)] = Field(
        default_factory=Limits
    )
    services: dict[str, Any] | None = None
    identity: dict[str, Any] | None = None
    queue_settings: dict[str, Any] | None = None

    @field_validator("type", mode="before")
    @classmethod
    def _default_type(cls, value: Any) -> Any:
        return "command" if value is None else value

    @field_validator("command", mode="before")
    @classmethod
    def _command_text(cls, value: Any) -> Any:
        if not isinstance(value, str) or not value.strip():
            fail(problem(value=value, allowed="a non-empty shell command"))
        return value

    @field_validator("command")
    @classmethod
    def _command_expressions(cls, value: str, info: ValidationInfo) -> str:
        inputs = info.data.get("inputs")
        outputs = info.data.get("outputs")
        if inputs is None or outputs is None:  # they failed validation; no names to check
            return value
        found = check_command(value, {k: v.optional for k, v in inputs.items()}, outputs)
        if found:
            fail(*(problem(p.message, value=p.text, allowed=p.allowed) for p in found))
        return value

    @field_validator("code")
    @classmethod
    def _code_path(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if not value.strip():
            fail(problem("empty path", value=value, allowed="a folder or file to run the job in"))
        context = context_of(info)
        if context is None or classify_path(value) != "local":
            return value
        try:
            return context.existing(value)
        except Problems as exc:
            fail(*exc.problems)

    @field_validator("environment", mode="before")
    @classmethod
    def _environment(cls, value: Any, info: ValidationInfo) -> Any:
        return check_environment(value, info)

    @field_validator("compute", mode="after")
    @classmethod
    def _compute(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        normalized = normalize_compute(value)
        if not normalized or looks_like_placeholder(value) or any(c.isspace() for c in normalized):
            fail(
                problem(
                    "not a compute name",
                    value=value,
                    allowed="a compute name, azureml:<name> or serverless",
                )
            )
        return normalized
