"""Small parsers for command-line values."""

from __future__ import annotations

from collections.abc import Iterable

from mill.errors import UsageError

__all__ = ["key_values"]


def key_values(items: Iterable[str], flag: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for item in items:
        for part in item.split():
            key, sep, value = part.partition("=")
            if not sep or not key:
                raise UsageError(f"{flag} {part!r}: expected key=value")
            result[key] = value
    return result
