"""Base images to what Mill builds in their place (curated-environments.md, "Base images")."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["ImageMapping", "map_image"]

_PYTHON = re.compile(
    r"^(?:(?:docker\.io|index\.docker\.io)/)?(?:library/)?python(?::(?P<tag>[^@]+))?(?:@.+)?$",
    re.IGNORECASE,
)
_AZUREML = "mcr.microsoft.com/azureml/"
_VERSION_TAG = re.compile(r"^(\d+)\.(\d+)")
_PY_IN_NAME = re.compile(r"py(3)(\d{1,2})(?!\d)", re.IGNORECASE)
INFERENCE_SERVER = "azureml-inference-server-http"


@dataclass
class ImageMapping:
    """What stands in for an image: a family, a Python version hint, extra requirements."""

    family: str  # "python" | "openmpi" | "inference" | "other"
    python_version: str | None = None
    requirements: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def map_image(image: str) -> ImageMapping:
    """Map a base image reference; never fails (an unknown image gets a note)."""
    text = image.strip()
    python = _PYTHON.match(text)
    if python is not None:
        tag = python.group("tag") or ""
        version = _VERSION_TAG.match(tag)
        hint = f"{version.group(1)}.{version.group(2)}" if version else None
        return ImageMapping(
            "python",
            python_version=hint,
            notes=[f"image {text}: a plain virtualenv stands in for it"],
        )
    lowered = text.lower()
    if lowered.startswith(_AZUREML):
        name = lowered[len(_AZUREML) :]
        if name.startswith("openmpi"):
            return ImageMapping(
                "openmpi",
                notes=[
                    f"image {text}: a plain virtualenv stands in for it "
                    "(its system libraries, such as OpenMPI and CUDA, are not reproduced)"
                ],
            )
        if name.startswith("minimal-py3") and "-inference" in name:
            py = _PY_IN_NAME.search(name)
            return ImageMapping(
                "inference",
                python_version=f"{py.group(1)}.{py.group(2)}" if py else None,
                requirements=[INFERENCE_SERVER],
                notes=[f"image {text}: a virtualenv with {INFERENCE_SERVER} stands in for it"],
            )
    return ImageMapping(
        "other",
        notes=[
            f"image {text}: its contents are not reproduced; "
            "Mill builds a virtualenv (with the conda file's packages) instead"
        ],
    )
