"""A constant answer behind raw ASGI: the floor for the gateway-overhead comparison."""

from __future__ import annotations

from typing import Any

from ._asgi import json_app

CONSTANT = {"result": 1}


def score(body: Any) -> dict[str, Any]:
    return CONSTANT


app = json_app(score)
