"""The bootstrap's own constraints: it must start in any job environment, and fast."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from mill.runtime import bootstrap

SOURCE = Path(bootstrap.__file__).read_text()


def test_it_parses_as_python_3_8() -> None:
    ast.parse(SOURCE, feature_version=(3, 8))
    assert "strict=" not in SOURCE  # zip(strict=) is 3.10; parse alone would not notice


def test_it_imports_only_the_standard_library_and_little_at_start_up() -> None:
    tree = ast.parse(SOURCE)
    everywhere: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            everywhere.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            everywhere.add((node.module or "").split(".")[0])
    assert everywhere - {"__future__"} <= set(sys.stdlib_module_names)

    top_level = {
        alias.name for node in tree.body if isinstance(node, ast.Import) for alias in node.names
    }
    assert not top_level & {"shutil", "urllib", "urllib.request", "queue", "typing"}


@pytest.mark.parametrize("path", ["src/main.py", "a", "deep/er/file.txt", "./x.py", "a..b"])
def test_code_paths_inside_are_accepted(tmp_path: Path, path: str) -> None:
    root = str(tmp_path)
    assert bootstrap.code_target(root, path).startswith(root + "/")


@pytest.mark.parametrize("path", ["", ".", "../x", "a/../../x", "/etc/passwd", "a/..", "..\\x"])
def test_code_paths_outside_are_refused(tmp_path: Path, path: str) -> None:
    with pytest.raises(bootstrap.StagingError, match="refusing code file path"):
        bootstrap.code_target(str(tmp_path), path)


def test_last_line_skips_blank_lines_and_trims(tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    log.write_text("first\n" + "x" * 1000 + "\n\n   \n")
    assert bootstrap.last_line(str(log)) == "x" * 300
    log.write_text("progress 10%\rprogress 100%\n")
    assert bootstrap.last_line(str(log)) == "progress 100%"
    assert bootstrap.last_line(str(tmp_path / "missing")) == ""


def test_signal_exits_read_as_shells_report_them() -> None:
    assert bootstrap.exit_status(3) == 3
    assert bootstrap.exit_status(-9) == 137
