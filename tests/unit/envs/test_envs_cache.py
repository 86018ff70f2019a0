"""The cache folder without uv: listing, pruning, locks and durations."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mill.envs import UvEnvironmentBuilder, parse_duration
from mill.envs.cache import EnvironmentCache
from mill.errors import UsageError

NOW = 1_800_000_000.0
DAY = 86400.0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("45s", 45.0),
        ("30m", 1800.0),
        ("12h", 43200.0),
        ("7d", 604800.0),
        ("2w", 1209600.0),
        ("1h30m", 5400.0),
        (" 1.5H ", 5400.0),
        ("0s", 0.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "7", "7x", "d", "-1d", "seven days", "1d!", "1.d"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(UsageError) as raised:
        parse_duration(text)
    assert raised.value.message.startswith(
        f"not a duration: {text!r}; expected a number and a unit"
    )


def _fake_env(root: Path, index: int, last_used: float, ready: bool = True) -> str:
    key = f"{index:064x}"
    folder = root / key
    (folder / "bin").mkdir(parents=True)
    (folder / "bin" / "python").write_bytes(b"x" * 100)
    if ready:
        spec = {
            "canonical": {"python": "3.11", "requirements": ["six"]},
            "resolved": {
                "interpreter_version": "3.11",
                "requirements": ["six", "tomli"],
                "source": {"conda": "env.yml", "conda_name": "model-env"},
            },
        }
        EnvironmentCache(root).mark_ready(key, spec)
        os.utime(folder / "last_used", (last_used, last_used))
    return key


def test_list_cached(tmp_path: Path) -> None:
    older = _fake_env(tmp_path, 1, NOW - 3 * DAY)
    newer = _fake_env(tmp_path, 2, NOW - DAY)
    _fake_env(tmp_path, 3, NOW, ready=False)
    listed = UvEnvironmentBuilder(tmp_path, uv="/no/uv/needed").list_cached()
    assert [c.key for c in listed] == [newer, older]
    first = listed[0].to_dict()
    assert first["last_used"] == NOW - DAY
    assert first["python_version"] == "3.11"
    assert first["requirement_count"] == 2
    assert first["source"] == "conda model-env"
    assert first["size_bytes"] > 100
    assert first["path"] == str(tmp_path / newer)


def test_prune_by_age_and_count(tmp_path: Path) -> None:
    keys = [_fake_env(tmp_path, i, NOW - i * DAY) for i in range(1, 6)]
    crashed = _fake_env(tmp_path, 9, NOW, ready=False)
    builder = UvEnvironmentBuilder(tmp_path)
    removed = builder.prune(older_than=parse_duration("3d") + 1, now=NOW)
    assert sorted(removed) == sorted([keys[3], keys[4], crashed])
    assert [c.key for c in builder.list_cached()] == keys[:3]
    assert builder.prune(keep=1, now=NOW) == [keys[1], keys[2]]
    assert [c.key for c in builder.list_cached()] == keys[:1]
    assert not (tmp_path / keys[4]).exists()


def test_prune_skips_locked_environments(tmp_path: Path) -> None:
    in_use = _fake_env(tmp_path, 1, NOW - 10 * DAY)
    building = _fake_env(tmp_path, 2, NOW, ready=False)
    idle = _fake_env(tmp_path, 3, NOW - 10 * DAY)
    builder = UvEnvironmentBuilder(tmp_path)
    with builder.use(in_use), builder.cache.lock(building) as held:
        assert held
        assert builder.prune(keep=0, now=NOW) == [idle]
    assert (tmp_path / in_use / ".mill-ready").exists()
    assert (tmp_path / building).exists()
    assert sorted(builder.prune(keep=0, now=NOW)) == sorted([building, in_use])


def test_prune_needs_a_criterion(tmp_path: Path) -> None:
    builder = UvEnvironmentBuilder(tmp_path)
    with pytest.raises(UsageError):
        builder.prune()
    with pytest.raises(UsageError):
        builder.prune(keep=-1)
    assert builder.prune(keep=3) == []  # an empty (even missing) root is fine


def test_spec_json_is_readable(tmp_path: Path) -> None:
    key = _fake_env(tmp_path, 1, NOW)
    spec = json.loads((tmp_path / key / "spec.json").read_text())
    assert spec["canonical"]["requirements"] == ["six"]
    assert EnvironmentCache(tmp_path).canonical_forms() == [spec["canonical"]]
