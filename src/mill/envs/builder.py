"""Building resolved environments into cached uv virtualenvs.

One build per key at a time, across processes: the builder takes the key's exclusive
lock, looks again for the ready marker (another process may have just built it), removes
any half-built folder a crashed build left, then runs ``uv venv`` and ``uv pip install``,
streaming uv's output to the caller's log. A cache hit only checks the marker.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mill.errors import MillError, NotFoundError
from mill.hashing import content_hash

from .cache import CachedEnvironment, EnvironmentCache
from .definition import ResolvedEnvironment
from .key import canonical_form, environment_key, explain_difference
from .requirements import normalize_name, requirement_name

__all__ = ["BuiltEnvironment", "EnvironmentBuildError", "UvEnvironmentBuilder", "find_uv"]

Log = Callable[[str], None]
_TAIL = 20


class EnvironmentBuildError(MillError):
    """uv could not build an environment; the message ends with uv's last output lines."""

    code = "environment_build_failed"
    http_status = 422
    exit_code = 1


@dataclass(frozen=True)
class BuiltEnvironment:
    """A ready environment: where it is, its interpreter, and whether it was cached."""

    key: str
    path: Path
    python: Path
    cache_hit: bool
    seconds: float
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "path": str(self.path),
            "python": str(self.python),
            "cache_hit": self.cache_hit,
            "seconds": self.seconds,
            "reason": self.reason,
        }


def find_uv() -> str:
    """The uv binary of the ``uv`` Python package."""
    try:
        import uv  # the PyPI package that ships the binary

        return str(uv.find_uv_bin())
    except (ImportError, FileNotFoundError) as exc:
        raise MillError(
            "uv is needed to build environments but was not found",
            hint="install the 'uv' package into Mill's environment: pip install uv",
        ) from exc


class _Failed(Exception):
    def __init__(self, step: str, tail: list[str]) -> None:
        super().__init__(step)
        self.step = step
        self.tail = tail


class UvEnvironmentBuilder:
    """Builds environments under ``root`` (``<MILL_HOME>/envs``) with uv.

    ``env`` is the environment uv runs with (default: this process's). When it has
    ``PIP_FIND_LINKS`` and no ``UV_FIND_LINKS``, uv is given the same find-links, so wheels
    a machine provides to pip (such as a CPU torch build) are found by uv too.
    """

    def __init__(
        self, root: Path, uv: str | None = None, *, env: Mapping[str, str] | None = None
    ) -> None:
        self.root = Path(root)
        self.cache = EnvironmentCache(self.root)
        self._uv = uv
        self._env = env

    @property
    def uv(self) -> str:
        if self._uv is None:
            self._uv = find_uv()
        return self._uv

    def build(
        self,
        resolved: ResolvedEnvironment,
        *,
        log: Log = print,
        platform: str | None = None,
    ) -> BuiltEnvironment:
        """The environment for ``resolved``: from the cache, or built now."""
        started = time.monotonic()
        if resolved.kind == "user_managed":
            python = Path(resolved.python_path)
            return BuiltEnvironment(
                key=environment_key(resolved, platform),
                path=python.parent,
                python=python,
                cache_hit=True,
                seconds=time.monotonic() - started,
                reason="user-managed: nothing to build",
            )
        form = canonical_form(resolved, platform)
        key = content_hash(form)
        if self.cache.is_ready(key):
            return self._hit(key, started)
        with self.cache.lock(key):
            if self.cache.is_ready(key):  # another process built it while we waited
                return self._hit(key, started)
            reason = explain_difference(form, self.cache.canonical_forms())
            if self.cache.path(key).exists():
                log(f"Removing a half-built environment left by an earlier build: {key}")
                self.cache.remove(key)
            log(f"Building environment {key} ({reason})")
            for note in resolved.notes:
                log(f"note: {note}")
            try:
                self._build(key, resolved, log)
                seconds = time.monotonic() - started
                spec = {"key": key, "canonical": form, "resolved": resolved.model_dump(mode="json")}
                self.cache.mark_ready(key, {**spec, "build_seconds": round(seconds, 3)})
            except _Failed as failed:
                self.cache.remove(key)
                raise _build_error(failed, resolved) from None
            except BaseException:
                self.cache.remove(key)
                raise
        return BuiltEnvironment(
            key=key,
            path=self.cache.path(key),
            python=self.cache.path(key) / "bin" / "python",
            cache_hit=False,
            seconds=seconds,
            reason=reason,
        )

    def _hit(self, key: str, started: float) -> BuiltEnvironment:
        self.cache.touch(key)
        path = self.cache.path(key)
        return BuiltEnvironment(
            key=key,
            path=path,
            python=path / "bin" / "python",
            cache_hit=True,
            seconds=time.monotonic() - started,
            reason="cache hit",
        )

    def _build(self, key: str, resolved: ResolvedEnvironment, log: Log) -> None:
        folder = self.cache.path(key)
        self._run(
            "creating the virtualenv",
            [
                *(self.uv, "venv", "--no-project", "--no-python-downloads", "--no-progress"),
                *("--python", resolved.python_path, str(folder)),
            ],
            log,
        )
        if not resolved.requirements:
            return
        self._run(
            "installing the requirements",
            [
                *(self.uv, "pip", "install", "--no-progress"),
                *("--python", str(folder / "bin" / "python")),
                *uv_options(resolved.pip_options),
                *resolved.requirements,
            ],
            log,
        )

    def _run(self, step: str, command: list[str], log: Log) -> None:
        log("$ " + " ".join(["uv", *command[1:]]))
        tail: deque[str] = deque(maxlen=_TAIL)
        try:
            process = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
                errors="replace",
                env=self._uv_env(),
            )
        except OSError as exc:
            raise MillError(
                f"cannot run uv ({command[0]}): {exc}",
                hint="install the 'uv' package into Mill's environment: pip install uv",
            ) from exc
        assert process.stdout is not None  # stdout=PIPE
        with process:
            for line in process.stdout:
                text = line.rstrip("\n")
                tail.append(text)
                log(text)
        if process.returncode != 0:
            raise _Failed(step, list(tail))

    def _uv_env(self) -> dict[str, str]:
        env = dict(os.environ if self._env is None else self._env)
        env.pop("VIRTUAL_ENV", None)  # the target is always given with --python
        find_links = env.get("PIP_FIND_LINKS", "").split()
        if find_links and "UV_FIND_LINKS" not in env:
            env["UV_FIND_LINKS"] = ",".join(find_links)
        return env

    def list_cached(self) -> list[CachedEnvironment]:
        """Every built environment, most recently used first."""
        return self.cache.entries()

    def prune(
        self, older_than: float | None = None, keep: int | None = None, now: float | None = None
    ) -> list[str]:
        """Remove environments unused for ``older_than`` seconds and/or all but ``keep``."""
        return self.cache.prune(older_than, keep, now)

    @contextmanager
    def use(self, key: str) -> Iterator[Path]:
        """Hold ``key``'s environment in use (prune skips it); yields its python."""
        with self.cache.lock(key, shared=True):
            if not self.cache.is_ready(key):
                raise NotFoundError(f"environment {key} is not in the cache (pruned?)")
            yield self.cache.path(key) / "bin" / "python"


def uv_options(pip_options: list[str]) -> list[str]:
    """pip options in uv's spelling; extra indexes resolve as pip does (best match)."""
    result: list[str] = []
    for option in pip_options:
        name, _, value = option.partition("=")
        if name == "--pre":
            result.append("--prerelease=allow")
        elif name == "--trusted-host":
            result.append(f"--allow-insecure-host={value}")
        else:
            result.append(option)
    if any(o.startswith("--extra-index-url") for o in pip_options):
        result.append("--index-strategy=unsafe-best-match")
    return result


def _build_error(failed: _Failed, resolved: ResolvedEnvironment) -> EnvironmentBuildError:
    output = normalize_name("\n".join(failed.tail))
    failing = [
        r
        for r in resolved.requirements
        if (name := requirement_name(r)) is not None
        and re.search(rf"(?<![a-z0-9-]){re.escape(name)}(?![a-z0-9-])", output)
    ]
    what = f"could not install {', '.join(failing)}" if failing else f"{failed.step} failed"
    tail = "\n".join(failed.tail) or "(uv printed nothing)"
    return EnvironmentBuildError(
        f"environment build failed: {what}\nlast lines of uv's output:\n{tail}",
        hint="check the package names and pins; the whole uv output is in the build log",
        details={"failing": failing, "step": failed.step, "output_tail": list(failed.tail)},
    )
