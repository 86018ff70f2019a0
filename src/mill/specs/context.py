"""Where a spec came from, passed to validators through pydantic's validation context.

Relative paths resolve against the folder of the YAML file that holds them (§1), never
the current directory. Without a base folder (a JSON body sent to the server) local
paths are left exactly as given.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationInfo

from .problems import Problems, problem
from .references import strip_file_prefix

__all__ = ["CONTEXT_KEY", "SpecContext", "context_of"]

CONTEXT_KEY = "mill_spec"
_LOCAL_HINT = "an existing file or folder (relative paths start at the YAML file's folder)"


@dataclass(frozen=True)
class SpecContext:
    """The folder relative paths start from, and how to show files below it in messages."""

    base_dir: Path | None = None
    shown_dir: str | None = None  # base_dir as the user wrote it ("" for the CWD)

    def as_context(self) -> dict[str, Any]:
        return {CONTEXT_KEY: self}

    def show(self, raw: str) -> str:
        """How to name the local file ``raw`` in a message: as the user would write it."""
        if os.path.isabs(raw) or self.shown_dir is None:
            return str(self.resolve(raw)) if self.base_dir is not None else raw
        return os.path.normpath(os.path.join(self.shown_dir, raw))

    def resolve(self, raw: str) -> Path:
        base = self.base_dir if self.base_dir is not None else Path.cwd()
        return Path(os.path.normpath(base / raw))

    def existing(self, value: str, *, want: str = "any") -> str:
        """Absolute path of the local reference ``value``; :class:`Problems` if it is missing.

        ``want`` is ``"any"``, ``"file"`` or ``"folder"``.
        """
        raw = strip_file_prefix(value.strip())
        if not raw:
            raise Problems([problem("empty path", value=value, allowed=_LOCAL_HINT)])
        resolved = self.resolve(raw)
        if not resolved.exists():
            message = f"no such file or folder: {resolved}"
            raise Problems([problem(message, value=value, allowed=_LOCAL_HINT)])
        if want == "file" and not resolved.is_file():
            raise Problems([problem(f"not a file: {resolved}", value=value, allowed="a file")])
        if want == "folder" and not resolved.is_dir():
            raise Problems([problem(f"not a folder: {resolved}", value=value, allowed="a folder")])
        return str(resolved)


def context_of(info: ValidationInfo) -> SpecContext | None:
    """The :class:`SpecContext` of a validation run, or ``None`` (no local paths)."""
    context = info.context
    if isinstance(context, Mapping):
        found = context.get(CONTEXT_KEY)
        if isinstance(found, SpecContext) and found.base_dir is not None:
            return found
    return None
