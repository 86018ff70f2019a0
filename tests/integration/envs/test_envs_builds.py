"""Real uv builds into temporary cache roots, with small packages from PyPI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from mill.envs import (
    BuiltEnvironment,
    EnvironmentBuildError,
    EnvironmentDefinition,
    ResolvedEnvironment,
    UvEnvironmentBuilder,
    environment_key,
    resolve,
)
from mill.errors import MillError

SIX = "six==1.16.0"
TOMLI = "tomli==2.0.1"
DAY = 86400.0


def _resolved(*pip: str) -> ResolvedEnvironment:
    return resolve(EnvironmentDefinition(conda={"dependencies": [{"pip": list(pip)}]}))


def _imports(built: BuiltEnvironment, code: str) -> str:
    completed = subprocess.run(
        [str(built.python), "-c", code], capture_output=True, text=True, check=True
    )
    return completed.stdout.strip()


def _quiet(line: str) -> None:
    pass


def _uv_runs(lines: list[str]) -> int:
    return sum(1 for line in lines if line.startswith("$ uv venv"))


def test_build_then_cache_hit(tmp_path: Path) -> None:
    builder = UvEnvironmentBuilder(tmp_path)
    resolved = _resolved(SIX, TOMLI)
    lines: list[str] = []
    built = builder.build(resolved, log=lines.append)
    assert not built.cache_hit
    assert built.key == environment_key(resolved)
    assert built.path == tmp_path / built.key
    assert built.reason == "no environment was built before"
    assert any("+ six==1.16.0" in line for line in lines)  # uv's own output, streamed
    # the packages live in the environment, not in the host interpreter
    where = _imports(built, "import six, tomli; print(six.__file__); print(tomli.__file__)")
    assert all(line.startswith(str(built.path)) for line in where.splitlines())
    assert _imports(built, "import sys; print(sys.prefix)") == str(built.path)
    spec = json.loads((built.path / "spec.json").read_text())
    assert spec["canonical"]["requirements"] == [SIX, TOMLI]
    assert spec["resolved"]["requirements"] == [SIX, TOMLI]

    last_used = built.path / "last_used"
    os.utime(last_used, (1.0, 1.0))
    again: list[str] = []
    hit = builder.build(_resolved(TOMLI, SIX), log=again.append)
    assert (hit.cache_hit, hit.reason, hit.python) == (True, "cache hit", built.python)
    assert again == []
    assert last_used.stat().st_mtime > 1.0

    other = builder.build(_resolved(SIX), log=lines.append)
    assert other.reason == "nearest cached environment differs: removed: tomli==2.0.1"
    assert [c.key for c in builder.list_cached()] == [other.key, built.key]


def test_four_concurrent_builders_build_once(tmp_path: Path) -> None:
    resolved = _resolved(SIX)
    start = threading.Barrier(4)
    logs: list[list[str]] = [[] for _ in range(4)]
    results: list[BuiltEnvironment] = []
    errors: list[BaseException] = []

    def run(index: int) -> None:
        builder = UvEnvironmentBuilder(tmp_path)  # one builder each, as separate jobs have
        start.wait()
        try:
            results.append(builder.build(resolved, log=logs[index].append))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert sum(_uv_runs(log) for log in logs) == 1
    assert sorted(r.cache_hit for r in results) == [False, True, True, True]
    assert len({r.python for r in results}) == 1


def test_concurrent_processes_build_once(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from mill.envs import EnvironmentDefinition, UvEnvironmentBuilder, resolve
        lines = []
        conda = {{"dependencies": [{{"pip": ["{TOMLI}"]}}]}}
        resolved = resolve(EnvironmentDefinition(conda=conda))
        built = UvEnvironmentBuilder(Path({str(tmp_path)!r})).build(resolved, log=lines.append)
        print(sum(1 for line in lines if line.startswith("$ uv venv")), built.cache_hit)
        """
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    outputs = sorted(p.communicate(timeout=120)[0].strip() for p in processes)
    assert outputs == ["0 True", "0 True", "0 True", "1 False"]


def test_failed_build_leaves_nothing_and_says_why(tmp_path: Path) -> None:
    builder = UvEnvironmentBuilder(tmp_path)
    resolved = _resolved(SIX, "this-package-does-not-exist-mill==1.0")
    lines: list[str] = []
    with pytest.raises(EnvironmentBuildError) as raised:
        builder.build(resolved, log=lines.append)
    error = raised.value
    assert error.message.startswith(
        "environment build failed: could not install this-package-does-not-exist-mill==1.0\n"
    )
    # uv words it "was not found in the package registry" or "...requirements are
    # unsatisfiable" depending on what its cache already knows; either way it is uv's own text.
    assert "this-package-does-not-exist-mill" in error.message.split("uv's output:", 1)[1]
    assert "not found" in error.message or "unsatisfiable" in error.message
    assert error.details["failing"] == ["this-package-does-not-exist-mill==1.0"]
    assert (error.code, error.http_status, error.exit_code) == ("environment_build_failed", 422, 1)
    assert not (tmp_path / environment_key(resolved)).exists()
    assert builder.list_cached() == []


def test_missing_uv_is_a_clear_error(tmp_path: Path) -> None:
    builder = UvEnvironmentBuilder(tmp_path, uv=str(tmp_path / "no-uv"))
    resolved = _resolved(SIX)
    with pytest.raises(MillError) as raised:
        builder.build(resolved, log=lambda line: None)
    assert "cannot run uv" in raised.value.message
    assert "pip install uv" in (raised.value.hint or "")
    assert not (tmp_path / environment_key(resolved)).exists()


def test_stale_half_built_folder_is_replaced(tmp_path: Path) -> None:
    builder = UvEnvironmentBuilder(tmp_path)
    resolved = _resolved(TOMLI)
    stale = tmp_path / environment_key(resolved)
    (stale / "bin").mkdir(parents=True)
    (stale / "debris.txt").write_text("left by a build that crashed")
    lines: list[str] = []
    built = builder.build(resolved, log=lines.append)
    assert not built.cache_hit
    assert any(line.startswith("Removing a half-built environment") for line in lines)
    assert not (stale / "debris.txt").exists()
    assert _imports(built, "import tomli; print('ok')") == "ok"


def test_prune_real_environments(tmp_path: Path) -> None:
    builder = UvEnvironmentBuilder(tmp_path)
    built = [builder.build(_resolved(*reqs), log=_quiet) for reqs in ([SIX], [TOMLI], [SIX, TOMLI])]
    now = 2_000_000_000.0
    for age, env in zip((1, 5, 10), built, strict=True):
        os.utime(env.path / "last_used", (now - age * DAY, now - age * DAY))
    with builder.use(built[2].key) as python:  # a job is running in the oldest one
        assert python == built[2].python
        assert builder.prune(older_than=3 * DAY, now=now) == [built[1].key]
        assert builder.prune(keep=0, now=now) == [built[0].key]
    assert [c.key for c in builder.list_cached()] == [built[2].key]
    assert builder.prune(keep=1, now=now) == []
    assert builder.prune(keep=0, now=now) == [built[2].key]
    assert builder.list_cached() == []


def test_dockerfile_context_with_requirements_builds(tmp_path: Path) -> None:
    context = tmp_path / "docker-context"
    context.mkdir()
    (context / "Dockerfile").write_text(
        textwrap.dedent(
            """\
            FROM python
            RUN apt-get update && apt-get install -y --no-install-recommends libgomp1
            WORKDIR /app
            COPY requirements.txt .
            RUN pip install --no-cache-dir -r requirements.txt
            """
        )
    )
    (context / "requirements.txt").write_text(f"{SIX}\n{TOMLI}  # pinned\n")
    resolved = resolve(EnvironmentDefinition(build_context=context))
    assert resolved.requirements == [SIX, TOMLI]
    assert resolved.context_digest is not None
    assert any("not reproduced: RUN apt-get" in note for note in resolved.notes)
    built = UvEnvironmentBuilder(tmp_path / "envs").build(resolved, log=lambda line: None)
    assert _imports(built, "import six, tomli; print(six.__version__)") == "1.16.0"


def test_user_managed_builds_nothing(tmp_path: Path) -> None:
    resolved = resolve(EnvironmentDefinition(user_managed=True, python_path=sys.executable))
    built = UvEnvironmentBuilder(tmp_path, uv="/no/uv/needed").build(resolved)
    assert (built.cache_hit, built.python) == (True, Path(sys.executable))
    assert list(tmp_path.iterdir()) == []
