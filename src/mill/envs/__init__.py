"""Environments: Azure ML environment definitions built as cached uv virtualenvs.

``resolve`` turns a definition (curated name, image, conda file, Docker build context,
or a user-managed interpreter) into a :class:`ResolvedEnvironment`; ``environment_key``
hashes its canonical form; :class:`UvEnvironmentBuilder` builds it once under
``<MILL_HOME>/envs/<key>`` and hands every later job the same virtualenv.
"""

from __future__ import annotations

from .builder import BuiltEnvironment, EnvironmentBuildError, UvEnvironmentBuilder, find_uv
from .cache import CachedEnvironment, parse_duration
from .conda import conda_to_pip
from .curated import curated_name, list_curated
from .definition import EnvironmentDefinition, ResolvedEnvironment
from .docker import BuiltImage, DockerImageBuilder, dockerfile_for
from .key import canonical_form, environment_key, explain_difference, platform_tag
from .resolve import resolve

__all__ = [
    "BuiltEnvironment",
    "BuiltImage",
    "CachedEnvironment",
    "DockerImageBuilder",
    "EnvironmentBuildError",
    "EnvironmentDefinition",
    "ResolvedEnvironment",
    "UvEnvironmentBuilder",
    "canonical_form",
    "conda_to_pip",
    "curated_name",
    "dockerfile_for",
    "environment_key",
    "explain_difference",
    "find_uv",
    "list_curated",
    "parse_duration",
    "platform_tag",
    "resolve",
]
