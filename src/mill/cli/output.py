"""`-o json|yaml|table|tsv` and `--query` (JMESPath), as the az CLI prints them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click

from mill.errors import UsageError

__all__ = ["FORMATS", "emit"]

FORMATS = ("json", "yaml", "table", "tsv")


def emit(
    data: Any,
    output: str | None,
    query: str | None,
    *,
    columns: Sequence[tuple[str, str]] = (),
    default: str = "json",
) -> None:
    """Print ``data``; ``columns`` are (header, JMESPath) pairs for the table of a list."""
    if query:
        data = _query(data, query)
        columns = ()
    fmt = output or default
    if fmt == "json":
        click.echo(json.dumps(data, indent=2, default=str))
    elif fmt == "yaml":
        import yaml

        click.echo(yaml.safe_dump(data, sort_keys=False, default_flow_style=False).rstrip())
    elif fmt == "tsv":
        for line in _tsv(data):
            click.echo(line)
    elif fmt == "table":
        click.echo(_table(data, columns))
    else:  # click's Choice keeps this from happening; kept as a guard for SDK callers
        raise UsageError(f"unknown output format {fmt!r}; allowed: {', '.join(FORMATS)}")


def _query(data: Any, expression: str) -> Any:
    import jmespath
    from jmespath.exceptions import JMESPathError

    try:
        return jmespath.search(expression, data)
    except JMESPathError as exc:
        raise UsageError(f"invalid --query {expression!r}: {exc}") from exc


def _scalar(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return str(value)


def _tsv(data: Any) -> list[str]:
    if isinstance(data, list):
        lines = []
        for item in data:
            if isinstance(item, dict):
                lines.append("\t".join(_scalar(v) for v in item.values()))
            elif isinstance(item, list):
                lines.append("\t".join(_scalar(v) for v in item))
            else:
                lines.append(_scalar(item))
        return lines
    if isinstance(data, dict):
        return ["\t".join(_scalar(v) for v in data.values())]
    return [_scalar(data)]


def _table(data: Any, columns: Sequence[tuple[str, str]]) -> str:
    rows = data if isinstance(data, list) else [data]
    if not rows:
        return ""
    if columns:
        import jmespath

        headers = [h for h, _ in columns]
        cells = [[_scalar(jmespath.search(path, r)) for _, path in columns] for r in rows]
    elif all(isinstance(r, dict) for r in rows):
        headers = []
        for r in rows:
            headers += [
                k for k, v in r.items() if k not in headers and not isinstance(v, (dict, list))
            ]
        cells = [[_scalar(r.get(h)) for h in headers] for r in rows]
        headers = [_title(h) for h in headers]
    else:
        headers = ["Result"]
        cells = [[_scalar(r)] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)


def _title(key: str) -> str:
    return "".join(part.capitalize() for part in key.split("_"))
