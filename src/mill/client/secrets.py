"""The vault's REST calls. A value goes in with :func:`set_secret`; nothing brings one back."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from mill.client.http import MillClient

__all__ = ["delete_secret", "list_secrets", "set_secret", "show_secret"]


def set_secret(
    client: MillClient, name: str, value: str, description: str | None = None
) -> dict[str, Any]:
    """Create or replace a secret; answers its metadata (version, key id, times)."""
    body = {"value": value, **({"description": description} if description else {})}
    result: dict[str, Any] = client.request("PUT", _url(client, name), json=body)
    return result


def show_secret(client: MillClient, name: str) -> dict[str, Any]:
    result: dict[str, Any] = client.request("GET", _url(client, name))
    return result


def list_secrets(client: MillClient) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = client.request("GET", client.ws("/secrets"))
    return result


def delete_secret(client: MillClient, name: str, force: bool = False) -> None:
    params = {"force": "true"} if force else None
    client.request("DELETE", _url(client, name), params=params)


def _url(client: MillClient, name: str) -> str:
    return client.ws(f"/secrets/{quote(name, safe='')}")
