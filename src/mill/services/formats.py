"""Small conversions shared by the services' read models."""

from __future__ import annotations

from datetime import datetime, timezone

__all__ = ["iso"]


def iso(ts: float | None) -> str | None:
    """Epoch seconds as ISO 8601 in UTC with a Z, as az ml prints timestamps."""
    if ts is None:
        return None
    return (
        datetime.fromtimestamp(ts, tz=timezone.utc)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )
