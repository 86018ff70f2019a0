"""End-to-end fixtures: a Mill home with its own real server subprocess, driven by the CLI."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.e2e.harness import MillHome, kill_leftovers


@pytest.fixture(scope="session", autouse=True)
def shared_environment_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One environment cache for the whole run, shared by all xdist workers (whose base temps
    sit in one folder per run)."""
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "mill-envs"
    root.mkdir(exist_ok=True)
    MillHome.shared_envs = root
    return root


@pytest.fixture
def mill(tmp_path: Path) -> Iterator[MillHome]:
    """A fresh home with its server started on a free port."""
    home = MillHome(tmp_path / "home")
    home.start()
    yield home
    home.stop()
    kill_leftovers(home.home)


@pytest.fixture(scope="module")
def shared_mill(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MillHome]:
    """One home and server for a module's read-mostly tests."""
    home = MillHome(tmp_path_factory.mktemp("shared") / "home")
    home.start()
    yield home
    home.stop()
    kill_leftovers(home.home)
