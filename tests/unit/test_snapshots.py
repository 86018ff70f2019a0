"""Code snapshots: .amlignore/.gitignore rules and content-addressed manifests."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from mill.errors import UsageError
from mill.storage.snapshots import (
    build_manifest,
    load_manifest,
    manifest_digest,
    save_manifest,
    validate_manifest,
)


def _tree(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _paths(root: Path) -> list[str]:
    return [f["path"] for f in build_manifest(root)["files"]]


def test_gitignore_rules(tmp_path: Path) -> None:
    _tree(
        tmp_path,
        {
            ".gitignore": "*.log\n/build/\ndata/**/*.bin\n!keep.log\n# comment\nsecret?.txt\n",
            "main.py": "",
            "run.log": "",
            "keep.log": "",
            "build/out.o": "",
            "src/build/kept.py": "",
            "data/a/b/c.bin": "",
            "data/a/b/c.txt": "",
            "secret1.txt": "",
            "secret10.txt": "",
            ".git/HEAD": "",
            "__pycache__/x.pyc": "",
        },
    )
    assert _paths(tmp_path) == [
        ".gitignore",
        "data/a/b/c.txt",
        "keep.log",
        "main.py",
        "secret10.txt",
        "src/build/kept.py",
    ]


def test_amlignore_wins_over_gitignore_and_nested_files_apply_below(tmp_path: Path) -> None:
    _tree(
        tmp_path,
        {
            ".amlignore": "*.csv\n",
            ".gitignore": "*.py\n",
            "a.py": "",
            "a.csv": "",
            "sub/.gitignore": "local.txt\n",
            "sub/local.txt": "",
            "sub/other.txt": "",
            "local.txt": "",
        },
    )
    assert _paths(tmp_path) == [
        ".gitignore",
        "a.py",
        "local.txt",
        "sub/.gitignore",
        "sub/other.txt",
    ]


def test_identical_folders_have_the_same_digest(tmp_path: Path) -> None:
    for name in ("one", "two"):
        _tree(tmp_path / name, {"x.py": "print(1)\n", "pkg/y.py": "y = 2\n"})
    one = build_manifest(tmp_path / "one")
    assert manifest_digest(one) == manifest_digest(build_manifest(tmp_path / "two"))
    (tmp_path / "two" / "x.py").write_text("print(2)\n")
    assert manifest_digest(one) != manifest_digest(build_manifest(tmp_path / "two"))


def test_single_file_and_prefix(tmp_path: Path) -> None:
    _tree(tmp_path, {"d/f.csv": "a,b\n"})
    assert _paths(tmp_path / "d" / "f.csv") == ["f.csv"]
    assert [f["path"] for f in build_manifest(tmp_path / "d", prefix="d")["files"]] == ["d/f.csv"]


@pytest.mark.parametrize("path", ["../etc/passwd", "/abs", "a/../../b", "", "a//b", "./a"])
def test_manifest_paths_must_stay_inside(path: str) -> None:
    with pytest.raises(UsageError, match="relative path inside"):
        validate_manifest({"files": [{"path": path, "sha256": "0" * 64, "size": 1, "mode": 420}]})


def test_concurrent_saves_of_one_manifest_all_succeed(tmp_path: Path) -> None:
    manifest = {"files": [{"path": f"f{i}.txt", "sha256": "a" * 64, "size": i} for i in range(500)]}
    digest = manifest_digest(manifest)
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def save() -> None:
        start.wait()
        try:
            save_manifest(tmp_path, digest, manifest)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=save) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert load_manifest(tmp_path, digest) == manifest
    assert [p.name for p in tmp_path.iterdir()] == [f"{digest}.json"]  # no temporary left
