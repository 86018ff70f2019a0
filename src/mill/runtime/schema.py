"""Swagger documents for code deployments, from ``inference_schema`` samples or the code
folder's own ``swagger*.json`` (standard library only at import time).

``GET /swagger.json`` answers version 2; ``?version=3`` answers OpenAPI 3. A file in the
code folder wins over the generated document: ``swagger.json`` or ``swagger2.json`` for
version 2, ``swagger3.json`` for version 3, as in Azure's inference server.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

__all__ = ["generated_swagger", "is_schema_decorated", "swagger_document"]

_FILES = {"2": ("swagger.json", "swagger2.json"), "3": ("swagger3.json",)}
_ALIASES = {"2": "2", "2.0": "2", "3": "3", "3.0": "3"}
_UNTYPED: dict[str, Any] = {"type": "object", "example": {}}


def is_schema_decorated(run: Any) -> bool:
    """Whether ``run`` carries ``@input_schema``/``@output_schema`` (never imports the
    package for a script that did not)."""
    if "inference_schema" not in sys.modules:
        return False
    from inference_schema.schema_util import is_schema_decorated as decorated

    return bool(decorated(run))


def swagger_document(version: str, code_dir: str, run: Any, title: str) -> dict[str, Any]:
    """The swagger for ``version``, or :class:`LookupError` naming the versions served."""
    wanted = _ALIASES.get(version)
    if wanted is None:
        raise LookupError(f"swagger version {version!r} is not served; use 2 or 3")
    for name in _FILES[wanted]:
        path = os.path.join(code_dir, name)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                document: dict[str, Any] = json.load(f)
            return document
    inputs, outputs = _schemas(run)
    if wanted == "2":
        return _swagger2(title, inputs, outputs)
    return _openapi3(title, inputs, outputs)


def generated_swagger(
    version: str, title: str, inputs: dict[str, Any], outputs: dict[str, Any]
) -> dict[str, Any]:
    """A swagger document from JSON schemas of the input and output (no-code deployments
    describe their model's signature this way)."""
    wanted = _ALIASES.get(version)
    if wanted is None:
        raise LookupError(f"swagger version {version!r} is not served; use 2 or 3")
    return _swagger2(title, inputs, outputs) if wanted == "2" else _openapi3(title, inputs, outputs)


def _schemas(run: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    if run is None or not is_schema_decorated(run):
        return _UNTYPED, _UNTYPED
    from inference_schema.schema_util import get_input_schema, get_output_schema

    return get_input_schema(run), get_output_schema(run)


def _operations(body: dict[str, Any], output: dict[str, Any]) -> dict[str, Any]:
    return {
        "/": {
            "get": {
                "operationId": "ServiceHealthCheck",
                "description": "Simple health check endpoint to ensure the service is up.",
                "responses": {"200": {"description": "Healthy", "schema": {"type": "string"}}},
            }
        },
        "/score": {
            "post": {
                "operationId": "RunMLService",
                "description": "Run web service's model and get the prediction output",
                "security": [{"Bearer": []}],
                **body,
                "responses": {
                    "200": {"description": "Success", **output},
                    "default": {
                        "description": "Failure",
                        **_ref_like(output, "ErrorResponse"),
                    },
                },
            }
        },
    }


def _ref_like(example: dict[str, Any], name: str) -> dict[str, Any]:
    key = "schema" if "schema" in example else "content"
    if key == "schema":
        return {"schema": {"$ref": f"#/definitions/{name}"}}
    return {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}}


_ERROR = {"type": "object", "properties": {"error": {"type": "string"}}}


def _swagger2(title: str, inputs: dict[str, Any], outputs: dict[str, Any]) -> dict[str, Any]:
    body = {
        "parameters": [
            {
                "name": "serviceInputPayload",
                "in": "body",
                "description": "The input payload for executing the real-time machine learning"
                " service.",
                "schema": {"$ref": "#/definitions/ServiceInput"},
            }
        ]
    }
    output = {"schema": {"$ref": "#/definitions/ServiceOutput"}}
    return {
        "swagger": "2.0",
        "info": {"title": title, "description": "API specification for " + title, "version": "1.0"},
        "schemes": ["https"],
        "consumes": ["application/json"],
        "produces": ["application/json"],
        "securityDefinitions": {
            "Bearer": {
                "type": "apiKey",
                "name": "Authorization",
                "in": "header",
                "description": "For example: Bearer abc123",
            }
        },
        "paths": _operations(body, output),
        "definitions": {"ServiceInput": inputs, "ServiceOutput": outputs, "ErrorResponse": _ERROR},
    }


def _openapi3(title: str, inputs: dict[str, Any], outputs: dict[str, Any]) -> dict[str, Any]:
    ref = "#/components/schemas/"
    body = {
        "requestBody": {
            "description": "The input payload for executing the real-time machine learning"
            " service.",
            "content": {"application/json": {"schema": {"$ref": ref + "ServiceInput"}}},
        }
    }
    output = {"content": {"application/json": {"schema": {"$ref": ref + "ServiceOutput"}}}}
    paths = _operations(body, output)
    paths["/"]["get"]["responses"]["200"] = {
        "description": "Healthy",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
    return {
        "openapi": "3.0.1",
        "info": {"title": title, "description": "API specification for " + title, "version": "1.0"},
        "components": {
            "securitySchemes": {"Bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"ServiceInput": inputs, "ServiceOutput": outputs, "ErrorResponse": _ERROR},
        },
        "paths": paths,
    }
