"""What a replica serves: the user's ``score.py`` or a no-code model (standard library only
at import time; each handler imports what its model needs when it loads).

``load_handler(plan)`` picks the handler from ``plan["kind"]`` through a lazy table, so a
code deployment never imports the ONNX or MLflow handlers and their libraries:

    code    CodeHandler (this module): Azure's ``init()``/``run()`` contract
    mlflow  nocode_mlflow.MlflowHandler: ``mlflow.pyfunc`` with Azure's and MLflow's bodies
    onnx    nocode_onnx.OnnxHandler: one ``model.onnx``, ``/score`` and KServe v2 routes
    triton  nocode_onnx.TritonHandler: a Triton repository of ONNX models, KServe v2 routes

A handler answers bad input with a 4xx :class:`Response` itself (raise :class:`BadRequest`
inside ``handle`` helpers); any other exception becomes the replica's 500 naming the error.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qs

from .schema import is_schema_decorated, swagger_document
from .shims.azureml.contrib.services.aml_request import AMLRequest

__all__ = [
    "BadRequest",
    "CodeHandler",
    "Handler",
    "Request",
    "Response",
    "error_response",
    "json_response",
    "load_handler",
]

_SHIMS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shims")
# kind -> (module in this package, class): imported only when a plan names the kind.
_NO_CODE = {
    "mlflow": ("nocode_mlflow", "MlflowHandler"),
    "onnx": ("nocode_onnx", "OnnxHandler"),
    "triton": ("nocode_onnx", "TritonHandler"),
}


@dataclass
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def query_params(self) -> dict[str, list[str]]:
        return parse_qs(self.query, keep_blank_values=True)

    def json(self) -> Any:
        """The body as JSON, or :class:`BadRequest` saying why it is not."""
        if not self.body.strip():
            raise BadRequest("the request body is empty; send a JSON document")
        try:
            return json.loads(self.body)
        except UnicodeDecodeError as exc:
            raise BadRequest(f"the request body is not UTF-8 text: {exc}") from None
        except ValueError as exc:
            raise BadRequest(f"the request body is not valid JSON: {exc}") from None


@dataclass
class Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class BadRequest(Exception):
    """The request cannot be scored as sent; answered 400 (or ``status``) with the message."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def json_response(value: Any, status: int = 200) -> Response:
    body = json.dumps(value).encode()
    return Response(status, {"content-type": "application/json"}, body)


def error_response(status: int, message: str) -> Response:
    return json_response({"error": message}, status)


class Handler(Protocol):
    def init(self) -> None: ...

    def handle(self, request: Request) -> Response: ...


class CodeHandler:
    """A code deployment: ``init()`` once, ``run(...)`` per request (Azure's contract).

    How ``run`` is called, as ``azureml-inference-server-http`` does:

    * plain ``run(raw_data)``: the body decoded as UTF-8 text (400 if it is not UTF-8); a
      ``GET /score`` passes the query parameters as a JSON object text;
    * ``@input_schema``-decorated: the body must be a JSON object (400 otherwise); each
      top-level key is passed as a keyword argument, which the decorators convert;
    * ``@rawhttp``: ``run(request)`` gets an ``AMLRequest`` (method, headers, args,
      ``get_data()``, ``get_json()``, ``files``, ``form``);
    * a ``request_headers`` parameter, when ``run`` declares one, receives the headers.

    What ``run`` returns: an ``AMLResponse`` (or any object with ``status_code``,
    ``headers`` and ``get_data()``, such as a Flask response) is sent as it is; anything
    else is JSON-serialised into a 200 ``application/json`` answer. A returned ``str`` is
    therefore sent as a JSON string (``"text"`` with its quotes), as the reference server
    does, so a script returning ``json.dumps(result)`` answers a JSON string holding JSON.
    A value that is not JSON-serialisable (``bytes``, a NumPy array) is a 500 naming its
    type, as in the reference server; return ``AMLResponse(...)`` to send raw bytes.
    Exceptions raised by ``run`` are the replica's 500 with the message; the traceback
    goes to the replica's log.
    """

    def __init__(self, code_dir: str, scoring_script: str, name: str = "") -> None:
        self.code_dir = code_dir
        self.scoring_script = scoring_script
        self.name = name
        self.module: Any = None
        self.run: Any = None
        self.mode = "text"  # "text" | "schema" | "raw"
        self.params: list[str] = []
        self.wants_headers = False
        self._swagger: dict[str, Any] = {}

    def init(self) -> None:
        path = os.path.join(self.code_dir, self.scoring_script)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"scoring script not found: {self.scoring_script}")
        sys.path.insert(0, self.code_dir)
        if _SHIMS not in sys.path:
            # Last, so an installed azureml-contrib-services or inference server wins.
            sys.path.append(_SHIMS)
        os.chdir(self.code_dir)
        name = os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {self.scoring_script} as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        run = getattr(module, "run", None)
        if not callable(run):
            raise AttributeError(f"{self.scoring_script} has no run() function")
        self._analyse_run(run)
        init = getattr(module, "init", None)
        if callable(init):
            init()
        self.module = module
        self.run = run

    def _analyse_run(self, run: Any) -> None:
        params = list(inspect.signature(run).parameters.values())
        allowed = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        if any(p.kind not in allowed for p in params):
            raise TypeError("run() cannot take positional-only arguments, *args or **kwargs")
        self.wants_headers = any(p.name == "request_headers" for p in params)
        self.params = [p.name for p in params if p.name != "request_headers"]
        if not self.params:
            raise TypeError("run() must take an argument for the input data")
        raw = _is_rawhttp(run)
        schema = is_schema_decorated(run)
        if raw and schema:
            raise TypeError("run() cannot be decorated with both @rawhttp and @input_schema")
        self.mode = "raw" if raw else "schema" if schema else "text"

    def handle(self, request: Request) -> Response:
        if request.path == "/swagger.json" and request.method == "GET":
            return self._swagger_answer(request)
        if request.path not in ("/score", "/"):
            return error_response(404, f"no route {request.method} {request.path}")
        if self.mode != "raw" and request.method not in ("GET", "POST"):
            if request.method == "OPTIONS":
                return Response(200)
            return error_response(405, f"method {request.method} is not allowed; score with POST")
        try:
            kwargs = self._arguments(request)
        except BadRequest as exc:
            return error_response(exc.status, str(exc))
        if self.wants_headers:
            kwargs["request_headers"] = dict(request.headers)
        try:
            result = self.run(**kwargs)
        except Exception as exc:
            status = getattr(exc, "mill_status", None)  # AMLRequest.get_json on a bad body
            if isinstance(status, int):
                return error_response(status, str(exc))
            raise
        return _to_response(result)

    def _arguments(self, request: Request) -> dict[str, Any]:
        first = self.params[0]
        if self.mode == "raw":
            return {first: _aml_request(request)}
        if self.mode == "text":
            if request.method == "GET":
                return {first: json.dumps(_query_as_json(request))}
            try:
                return {first: request.body.decode("utf-8")}
            except UnicodeDecodeError as exc:
                raise BadRequest(f"the request body cannot be decoded as UTF-8: {exc}") from None
        data = _query_as_json(request) if request.method == "GET" else request.json()
        if not isinstance(data, dict):
            raise BadRequest(
                f"the request body must be a JSON object with the keys {', '.join(self.params)}"
                f" (run() is decorated with @input_schema); got a {type(data).__name__}"
            )
        unknown = sorted(set(data) - set(self.params))
        if unknown:
            raise BadRequest(
                f"unexpected input {', '.join(map(repr, unknown))}; "
                f"run() takes {', '.join(self.params)}"
            )
        return data

    def _swagger_answer(self, request: Request) -> Response:
        version = (request.query_params().get("version") or ["2"])[0]
        if version not in self._swagger:
            try:
                self._swagger[version] = swagger_document(
                    version, self.code_dir, self.run, self.name or "mill-deployment"
                )
            except LookupError as exc:
                return error_response(404, str(exc))
        return json_response(self._swagger[version])


def _is_rawhttp(run: Any) -> bool:
    if getattr(run, "__mill_rawhttp__", False):
        return True
    # An installed azureml-contrib-services / inference server records @rawhttp here.
    module = sys.modules.get("azureml.contrib.services.aml_request")
    return bool(getattr(module, "_rawHttpRequested", False)) and not hasattr(
        module, "__mill_shim__"
    )


def _aml_request(request: Request) -> AMLRequest:
    return AMLRequest(request.method, request.path, request.query, request.headers, request.body)


def _query_as_json(request: Request) -> dict[str, Any]:
    """Query parameters as the reference server passes them: each value parsed as JSON when
    it is JSON, a repeated parameter as a list."""

    def parse(text: str) -> Any:
        try:
            return json.loads(text)
        except ValueError:
            return text

    return {
        key: parse(values[0]) if len(values) == 1 else [parse(v) for v in values]
        for key, values in request.query_params().items()
    }


def _to_response(result: Any) -> Response:
    if hasattr(result, "status_code") and hasattr(result, "get_data"):
        headers = {str(k).lower(): str(v) for k, v in result.headers.items()}
        return Response(int(result.status_code), headers, bytes(result.get_data()))
    try:
        return json_response(result)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"run() returned a {type(result).__name__}, which is not JSON serializable ({exc});"
            " return lists, dicts, strings or numbers, or an AMLResponse for raw bytes"
        ) from None


def load_handler(plan: dict[str, Any]) -> Handler:
    kind = plan.get("kind")
    if kind == "code":
        return CodeHandler(plan["code_dir"], plan["scoring_script"], str(plan.get("name", "")))
    if kind in _NO_CODE:
        module_name, class_name = _NO_CODE[kind]
        module = importlib.import_module(f".{module_name}", __package__)
        handler: Handler = getattr(module, class_name)(plan)
        return handler
    raise ValueError(f"replicas cannot serve deployments of kind {kind!r}")
