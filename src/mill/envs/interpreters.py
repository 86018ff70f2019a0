"""Finding a ``python3.X`` on this machine, and asking an interpreter its version."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

from mill.errors import MillError

__all__ = ["find_python", "interpreter_version"]

_PATCH_DIR = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


def find_python(
    version: str, *, search_path: str | None = None, pyenv_root: Path | None = None
) -> str | None:
    """An executable ``python<version>`` from PATH or pyenv's versions, else None.

    pyenv's shims are skipped: a shim for a version that is not selected fails when run,
    so pyenv's own ``versions/<X.Y.Z>/bin`` folders are searched instead (newest patch first).
    """
    name = f"python{version}"
    path = os.environ.get("PATH", "") if search_path is None else search_path
    for folder in path.split(os.pathsep):
        if not folder or Path(folder).name == "shims":
            continue
        candidate = Path(folder) / name
        if _executable(candidate):
            return str(candidate)
    root = pyenv_root
    if root is None:
        env_root = os.environ.get("PYENV_ROOT")
        root = Path(env_root) if env_root else Path.home() / ".pyenv"
    versions = root / "versions"
    if not versions.is_dir():
        return None
    found = []
    for entry in versions.iterdir():
        match = _PATCH_DIR.match(entry.name)
        if match and f"{match.group(1)}.{match.group(2)}" == version:
            found.append((int(match.group(3)), entry / "bin" / name))
    for _, candidate in sorted(found, reverse=True):
        if _executable(candidate):
            return str(candidate)
    return None


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


@lru_cache(maxsize=64)
def interpreter_version(python: str) -> str:
    """``major.minor`` of an interpreter (this process's without running anything)."""
    if _same_file(python, sys.executable):
        return f"{sys.version_info.major}.{sys.version_info.minor}"
    try:
        completed = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MillError(f"cannot run the Python interpreter {python}: {exc}") from exc
    text = completed.stdout.strip()
    if completed.returncode != 0 or not re.fullmatch(r"\d+\.\d+", text):
        detail = (completed.stderr.strip().splitlines() or [text or "no output"])[-1]
        raise MillError(f"{python} is not a working Python interpreter: {detail}")
    return text


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
