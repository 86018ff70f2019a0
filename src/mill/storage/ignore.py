"""``.amlignore`` / ``.gitignore`` matching for code snapshots.

Azure ML reads ``.amlignore`` when a folder has one and ``.gitignore`` otherwise; patterns
follow gitignore rules: ``#`` comments, ``!`` negation, a trailing ``/`` for folders only,
a ``/`` inside the pattern anchors it to the folder holding the file, ``*``, ``?``, ``[...]``
and ``**``. Each folder's file applies to everything below that folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["IgnoreRules", "read_rules"]

IGNORE_FILES = (".amlignore", ".gitignore")


@dataclass(frozen=True)
class _Rule:
    regex: re.Pattern[str]
    negate: bool
    dir_only: bool


class IgnoreRules:
    """Rules from the ignore files of one folder and its parents (within the snapshot)."""

    def __init__(self, rules: tuple[tuple[str, _Rule], ...] = ()) -> None:
        self._rules = rules  # (base folder relative to the snapshot root, rule)

    def extended(self, base: str, folder: Path) -> IgnoreRules:
        new = read_rules(folder)
        if not new:
            return self
        return IgnoreRules(self._rules + tuple((base, r) for r in new))

    def ignored(self, rel_path: str, is_dir: bool) -> bool:
        result = False
        for base, rule in self._rules:
            if base and not rel_path.startswith(base + "/"):
                continue
            local = rel_path[len(base) + 1 :] if base else rel_path
            if rule.dir_only and not is_dir:
                continue
            if rule.regex.match(local):
                result = not rule.negate
        return result


def read_rules(folder: Path) -> list[_Rule]:
    for name in IGNORE_FILES:
        path = folder / name
        if path.is_file():
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
            return [rule for line in lines if (rule := _parse(line)) is not None]
    return []


def _parse(line: str) -> _Rule | None:
    text = line.rstrip()
    if not text or text.startswith("#"):
        return None
    negate = text.startswith("!")
    if negate:
        text = text[1:]
    dir_only = text.endswith("/")
    text = text.rstrip("/")
    if not text:
        return None
    anchored = "/" in text
    text = text.lstrip("/")
    body = _translate(text)
    prefix = "" if anchored else r"(?:.*/)?"
    return _Rule(re.compile(f"^{prefix}{body}$"), negate, dir_only)


def _translate(pattern: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append(r"(?:.*/)?")
            i += 3
        elif pattern.startswith("/**", i) and i + 3 == len(pattern):
            out.append(r"/.*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(r".*")
            i += 2
        elif c == "*":
            out.append(r"[^/]*")
            i += 1
        elif c == "?":
            out.append(r"[^/]")
            i += 1
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(c))
                i += 1
            else:
                cls = pattern[i + 1 : end].replace("\\", "\\\\")
                if cls.startswith("!"):
                    cls = "^" + cls[1:]
                out.append(f"[{cls}]")
                i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)
