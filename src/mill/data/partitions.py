"""extract_columns_from_partition_format: columns from the folders a file sits in.

As in Azure ML, ``{name}`` takes one path segment (or part of one) as text and
``{name:yyyy/MM/dd}`` takes a date (``yyyy``, ``MM``, ``dd``, ``HH``, ``mm``, ``ss``). The
format matches the end of each file's path: ``{Store}/{Brand}/{file_name}.{extension}``
reads ``Store1001/dominicks/data.csv`` as Store, Brand, file_name and extension.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

__all__ = ["PartitionFormat"]

_PART = re.compile(r"\{([^{}:]+)(?::([^{}]+))?\}")
_DATE_TOKENS = {
    "yyyy": (r"\d{4}", "%Y"),
    "MM": (r"\d{2}", "%m"),
    "dd": (r"\d{2}", "%d"),
    "HH": (r"\d{2}", "%H"),
    "mm": (r"\d{2}", "%M"),
    "ss": (r"\d{2}", "%S"),
}
_DATE_TOKEN = re.compile("|".join(_DATE_TOKENS))


class PartitionFormat:
    """A compiled partition format; :meth:`values` reads one path."""

    def __init__(self, text: str) -> None:
        self.names: list[str] = []
        self._dates: dict[str, str] = {}
        pattern = ""
        end = 0
        for match in _PART.finditer(text):
            pattern += re.escape(text[end : match.start()])
            name, date = match.group(1).strip(), match.group(2)
            if name in self.names:
                raise ValueError(f"column {name!r} appears twice in the partition format")
            group = f"p{len(self.names)}"
            self.names.append(name)
            if date is None:
                pattern += f"(?P<{group}>[^/]+)"
            else:
                regex, strptime = _date_pattern(date)
                pattern += f"(?P<{group}>{regex})"
                self._dates[name] = strptime
            end = match.end()
        pattern += re.escape(text[end:])
        if not self.names:
            raise ValueError("the partition format names no columns; write them as {column}")
        prefix = "" if text.startswith("/") else "(?:^|/)"
        self._regex = re.compile(f"{prefix}{pattern}$")

    def values(self, path: str) -> dict[str, Any]:
        """Column name -> value for ``path`` (``None`` for each when the path does not match)."""
        match = self._regex.search(path.replace("\\", "/"))
        result: dict[str, Any] = {}
        for number, name in enumerate(self.names):
            value = match.group(f"p{number}") if match else None
            if value is not None and name in self._dates:
                value = datetime.strptime(value, self._dates[name])
            result[name] = value
        return result


def _date_pattern(fmt: str) -> tuple[str, str]:
    regex, strptime, end = "", "", 0
    for match in _DATE_TOKEN.finditer(fmt):
        regex += re.escape(fmt[end : match.start()])
        strptime += fmt[end : match.start()].replace("%", "%%")
        token_regex, token_strptime = _DATE_TOKENS[match.group(0)]
        regex += token_regex
        strptime += token_strptime
        end = match.end()
    regex += re.escape(fmt[end:])
    strptime += fmt[end:].replace("%", "%%")
    return regex, strptime
