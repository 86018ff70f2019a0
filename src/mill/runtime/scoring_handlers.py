"""What a replica serves: the user's ``score.py`` or a no-code model (standard library only
at import time; each handler imports what its model needs when it loads)."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["CodeHandler", "Handler", "Request", "Response", "json_response", "load_handler"]


@dataclass
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def json_response(value: Any, status: int = 200) -> Response:
    body = json.dumps(value).encode()
    return Response(status, {"content-type": "application/json"}, body)


class Handler(Protocol):
    def init(self) -> None: ...

    def handle(self, request: Request) -> Response: ...


class CodeHandler:
    """A code deployment: ``init()`` once, ``run(raw_data)`` per request (Azure's contract)."""

    def __init__(self, code_dir: str, scoring_script: str) -> None:
        self.code_dir = code_dir
        self.scoring_script = scoring_script
        self.module: Any = None

    def init(self) -> None:
        path = os.path.join(self.code_dir, self.scoring_script)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"scoring script not found: {self.scoring_script}")
        sys.path.insert(0, self.code_dir)
        os.chdir(self.code_dir)
        name = os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        if not callable(getattr(module, "run", None)):
            raise AttributeError(f"{self.scoring_script} has no run() function")
        init = getattr(module, "init", None)
        if callable(init):
            init()
        self.module = module

    def handle(self, request: Request) -> Response:
        if request.path not in ("/score", "/"):
            return json_response({"error": f"no route {request.method} {request.path}"}, 404)
        if request.method != "POST":
            return json_response({"error": "score with POST"}, 405)
        result = self.module.run(request.body.decode("utf-8", errors="replace"))
        return json_response(result)


def load_handler(plan: dict[str, Any]) -> Handler:
    kind = plan.get("kind")
    if kind == "code":
        return CodeHandler(plan["code_dir"], plan["scoring_script"])
    raise ValueError(f"replicas cannot serve deployments of kind {kind!r} yet")
