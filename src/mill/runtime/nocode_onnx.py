"""No-code ONNX and Triton deployments: ONNX Runtime on CPU behind ``/score`` and KServe v2.

Plan fields (besides ``kind``, ``name``, ``host``, ``port_file``, ``max_concurrent``)::

    onnx    "model_path": folder holding the model (or the .onnx file itself),
            "onnx_file": "model.onnx" (in that folder), "model_name": v2 name (default:
            the folder's name), "model_version": "1", "intra_op_num_threads": 1
    triton  "model_path": the repository (or one model's folder), "intra_op_num_threads": 1,
            "triton_models": [{"name", "version", "onnx_file" (relative to model_path),
                               "max_batch_size", "inputs"/"outputs": [{"name", "datatype"
                               (KServe v2: FP32, INT64, BYTES, ...), "dims"}]}]
            (see ``mill.serving.model_plans.replica_model_fields``)

Routes::

    POST /score                       {"data": [[...]]} or {"input_data": ...} (first input),
                                      {"inputs": {name: values}} -> {output name: values};
                                      a KServe v2 body -> a v2 answer (triton: only model)
    POST /v2/models/<m>[/versions/<v>]/infer   KServe v2 inference
    GET  /v2/models/<m>[/versions/<v>]         model metadata; .../ready
    GET  /v2/health/live, /v2/health/ready, /v2

Names, datatypes and shapes are checked against the model's (for Triton: ``config.pbtxt``'s,
with the batch axis when ``max_batch_size`` > 0); a disagreement is a 400 naming the input.
Imports NumPy and ONNX Runtime in ``init`` only.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import Any

from .schema import generated_swagger
from .scoring_handlers import BadRequest, Request, Response, error_response, json_response

__all__ = ["OnnxHandler", "OnnxModel", "TritonHandler"]

_ONNX_TO_V2 = {
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(float16)": "FP16",
    "tensor(bfloat16)": "BF16",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(bool)": "BOOL",
    "tensor(string)": "BYTES",
}
_V2_TO_NUMPY = {
    "FP32": "float32",
    "FP64": "float64",
    "FP16": "float16",
    "INT8": "int8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "BOOL": "bool",
    "BYTES": "object",
}
_NUMPY_TO_V2 = {v: k for k, v in _V2_TO_NUMPY.items()}
_V2_ROUTE = re.compile(r"^/v2/models/([^/]+)(?:/versions/([^/]+))?(/infer|/ready)?/?$")


@dataclass(frozen=True)
class _Tensor:
    name: str
    datatype: str  # KServe v2
    shape: tuple[int, ...]  # -1: any size
    dtype: Any  # numpy dtype

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


class OnnxModel:
    """One ONNX Runtime session with its inputs and outputs worked out once."""

    def __init__(
        self,
        name: str,
        version: str,
        path: str,
        threads: int = 1,
        declared: dict[str, Any] | None = None,
    ) -> None:
        import numpy as np
        import onnxruntime as ort

        self.np = np
        self.name = name
        self.version = version
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.inputs = [self._tensor(i) for i in self.session.get_inputs()]
        self.outputs = [self._tensor(o) for o in self.session.get_outputs()]
        self.max_batch_size = 0
        if declared is not None:
            self._apply_config(declared)
        self.by_name = {t.name: t for t in self.inputs}
        self.output_names = [t.name for t in self.outputs]

    def _tensor(self, arg: Any) -> _Tensor:
        datatype = _ONNX_TO_V2.get(arg.type, "BYTES")
        shape = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in (arg.shape or []))
        return _Tensor(arg.name, datatype, shape, self.np.dtype(_V2_TO_NUMPY[datatype]))

    def _apply_config(self, declared: dict[str, Any]) -> None:
        """Use ``config.pbtxt``'s view of the tensors, after checking it names the model's."""
        self.max_batch_size = int(declared.get("max_batch_size") or 0)
        batch = (-1,) if self.max_batch_size > 0 else ()
        for side, actual in (("inputs", self.inputs), ("outputs", self.outputs)):
            entries = declared.get(side) or []
            if not entries:
                continue
            names = {t.name for t in actual}
            given = {str(e["name"]) for e in entries}
            if given - names:
                raise ValueError(
                    f"model {self.name}: config.pbtxt declares {side} "
                    f"{', '.join(sorted(given - names))} that model.onnx does not have "
                    f"(it has {', '.join(sorted(names))})"
                )
            tensors = []
            for entry in entries:
                datatype = str(entry.get("datatype") or "BYTES")
                dims = tuple(int(d) for d in entry.get("dims") or [])
                tensors.append(
                    _Tensor(
                        str(entry["name"]),
                        datatype,
                        batch + dims,
                        self.np.dtype(_V2_TO_NUMPY.get(datatype, "object")),
                    )
                )
            if side == "inputs":
                self.inputs = tensors
            else:
                self.outputs = tensors

    def metadata(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "versions": [self.version],
            "platform": "onnxruntime_onnx",
            "inputs": [t.describe() for t in self.inputs],
            "outputs": [t.describe() for t in self.outputs],
        }

    def array(self, tensor: _Tensor, values: Any, shape: list[int] | None = None) -> Any:
        """``values`` as the input's element type and shape, or :class:`BadRequest`."""
        try:
            array = self.np.asarray(values, dtype=tensor.dtype)
        except (TypeError, ValueError) as exc:
            raise BadRequest(
                f"input {tensor.name!r}: cannot read the values as {tensor.datatype}: {exc}"
            ) from None
        if shape is not None:
            if array.size != math.prod(shape):
                raise BadRequest(
                    f"input {tensor.name!r}: shape {shape} needs {math.prod(shape)} values;"
                    f" got {array.size}"
                )
            array = array.reshape(shape)
        self._check_shape(tensor, list(array.shape))
        return array

    def _check_shape(self, tensor: _Tensor, shape: list[int]) -> None:
        expected = tensor.shape
        if not expected:
            return
        fits = len(shape) == len(expected) and all(
            e < 0 or e == s for e, s in zip(expected, shape, strict=True)
        )
        if not fits:
            shown = [d if d >= 0 else "-1" for d in expected]
            raise BadRequest(
                f"input {tensor.name!r}: model {self.name} takes shape {shown}; got {shape}"
            )
        if self.max_batch_size > 0 and shape[0] > self.max_batch_size:
            raise BadRequest(
                f"input {tensor.name!r}: batch of {shape[0]} is over model {self.name}'s"
                f" max_batch_size {self.max_batch_size}"
            )

    def run(self, feeds: dict[str, Any], outputs: list[str] | None = None) -> dict[str, Any]:
        names = outputs or self.output_names
        results = self.session.run(names, feeds)
        return dict(zip(names, results, strict=True))

    # -- request shapes ---------------------------------------------------------------------

    def score(self, body: Any) -> Response:
        """``/score``: Azure/MLflow-style bodies, or a KServe v2 body."""
        if not isinstance(body, dict):
            raise BadRequest(f"the request body must be a JSON object; got {type(body).__name__}")
        inputs = body.get("inputs")
        if isinstance(inputs, list) and inputs and all(isinstance(i, dict) for i in inputs):
            return self.infer_v2(body)
        if isinstance(inputs, dict):
            named = inputs
        elif "data" in body or "input_data" in body:
            value = body["data"] if "data" in body else body["input_data"]
            if isinstance(value, dict) and value and set(value) <= set(self.by_name):
                named = value
            elif len(self.inputs) == 1:
                named = {self.inputs[0].name: value}
            else:
                raise BadRequest(
                    f"model {self.name} takes {len(self.inputs)} inputs "
                    f'({", ".join(self.by_name)}); send {{"inputs": {{name: values}}}}'
                )
        else:
            raise BadRequest(
                'expected {"data": [...]}, {"input_data": ...}, {"inputs": {name: values}} or a '
                f"KServe v2 body; got the keys {', '.join(map(repr, body)) or '(none)'}"
            )
        feeds = {}
        for key, values in named.items():
            tensor = self.by_name.get(key)
            if tensor is None:
                raise BadRequest(self._unknown(key))
            feeds[key] = self.array(tensor, values)
        self._require_all(feeds)
        results = self.run(feeds)
        return json_response({k: _jsonable(v) for k, v in results.items()})

    def infer_v2(self, body: Any) -> Response:
        if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
            raise BadRequest('a KServe v2 request is {"inputs": [{name, shape, datatype, data}]}')
        feeds = {}
        for entry in body["inputs"]:
            if not isinstance(entry, dict) or "name" not in entry or "data" not in entry:
                raise BadRequest("each v2 input needs name, shape, datatype and data")
            key = str(entry["name"])
            tensor = self.by_name.get(key)
            if tensor is None:
                raise BadRequest(self._unknown(key))
            datatype = entry.get("datatype")
            if datatype is not None and datatype != tensor.datatype:
                raise BadRequest(
                    f"input {key!r}: datatype {datatype}, but model {self.name} takes"
                    f" {tensor.datatype}"
                )
            shape = entry.get("shape")
            if not isinstance(shape, list) or not all(isinstance(d, int) for d in shape):
                raise BadRequest(f"input {key!r}: shape must be a list of integers")
            feeds[key] = self.array(tensor, entry["data"], shape)
        self._require_all(feeds)
        wanted = body.get("outputs")
        names = None
        if isinstance(wanted, list) and wanted:
            names = [str(o.get("name")) for o in wanted if isinstance(o, dict)]
            unknown = [n for n in names if n not in self.output_names]
            if unknown:
                raise BadRequest(
                    f"output {unknown[0]!r} is not one of model {self.name}'s:"
                    f" {', '.join(self.output_names)}"
                )
        results = self.run(feeds, names)
        answer: dict[str, Any] = {"model_name": self.name, "model_version": self.version}
        if "id" in body:
            answer["id"] = body["id"]
        answer["outputs"] = [_v2_output(self.np, k, v) for k, v in results.items()]
        return json_response(answer)

    def _unknown(self, key: str) -> str:
        return f"unknown input {key!r}; model {self.name} takes {', '.join(self.by_name)}"

    def _require_all(self, feeds: dict[str, Any]) -> None:
        missing = [name for name in self.by_name if name not in feeds]
        if missing:
            raise BadRequest(f"missing input {missing[0]!r} for model {self.name}")


def _jsonable(value: Any) -> Any:
    return value.tolist() if hasattr(value, "tolist") else value


def _v2_output(np: Any, name: str, value: Any) -> dict[str, Any]:
    if isinstance(value, np.ndarray):
        datatype = _NUMPY_TO_V2.get(value.dtype.name, "BYTES")
        data = value.ravel().tolist()
        if datatype == "BYTES":
            data = [v.decode() if isinstance(v, bytes) else str(v) for v in data]
        return {"name": name, "datatype": datatype, "shape": list(value.shape), "data": data}
    # A sequence of maps (scikit-learn probabilities): one JSON value per row.
    rows = list(value) if isinstance(value, list) else [value]
    return {"name": name, "datatype": "BYTES", "shape": [len(rows)], "data": rows}


class _KServeHandler:
    """Routes shared by ONNX and Triton deployments; ``models`` is filled by ``init``."""

    inline = True  # ONNX Runtime with one thread: short, bounded work (see replica.py)

    def __init__(self, plan: dict[str, Any]) -> None:
        self.plan = plan
        self.threads = max(1, int(plan.get("intra_op_num_threads") or 1))
        self.models: dict[str, OnnxModel] = {}

    def init(self) -> None:
        raise NotImplementedError

    def handle(self, request: Request) -> Response:
        try:
            return self._route(request)
        except BadRequest as exc:
            return error_response(exc.status, str(exc))

    def _io(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """JSON schemas of ``/score``'s request and answer for the first model's tensors."""
        model = next(iter(self.models.values()))

        def tensor(t: Any) -> dict[str, Any]:
            return {
                "type": "array",
                "items": {},
                "description": f"{t.datatype}, shape {list(t.shape)}",
            }

        first = model.inputs[0]
        named = {t.name: tensor(t) for t in model.inputs}
        inputs = {
            "type": "object",
            "properties": {
                "data": {
                    **tensor(first),
                    "description": f"input {first.name!r}: " + tensor(first)["description"],
                },
                "inputs": {"type": "object", "properties": named},
            },
        }
        outputs = {"type": "object", "properties": {t.name: tensor(t) for t in model.outputs}}
        return inputs, outputs

    def _route(self, request: Request) -> Response:
        path, method = request.path, request.method
        if path in ("/score", "/"):
            if method != "POST":
                raise BadRequest("score with POST", 405)
            return self._score_model().score(request.json())
        if path == "/swagger.json" and method == "GET":
            version = (request.query_params().get("version") or ["2"])[0]
            try:
                return json_response(generated_swagger(version, "onnx-model", *self._io()))
            except LookupError as exc:
                return error_response(404, str(exc))
        if path in ("/v2/health/live", "/v2/health/ready") and method == "GET":
            key = "live" if path.endswith("live") else "ready"
            return json_response({key: True})
        if path in ("/v2", "/v2/") and method == "GET":
            return json_response({"name": "mill", "version": "1", "extensions": []})
        match = _V2_ROUTE.match(path)
        if match is None:
            return error_response(404, f"no route {method} {path}")
        name, version, action = match.groups()
        model = self.models.get(name)
        if model is None or (version is not None and version != model.version):
            shown = name if version is None else f"{name} version {version}"
            served = ", ".join(f"{m.name} (version {m.version})" for m in self.models.values())
            return error_response(404, f"no model {shown}; this deployment serves {served}")
        if action == "/infer":
            if method != "POST":
                raise BadRequest("infer with POST", 405)
            return model.infer_v2(request.json())
        if method != "GET":
            raise BadRequest(f"{method} is not allowed here", 405)
        if action == "/ready":
            return json_response({"name": model.name, "ready": True})
        return json_response(model.metadata())

    def _score_model(self) -> OnnxModel:
        if len(self.models) != 1:
            names = ", ".join(self.models)
            raise BadRequest(
                f"this deployment serves {len(self.models)} models ({names});"
                " POST /v2/models/<name>/infer"
            )
        return next(iter(self.models.values()))


class OnnxHandler(_KServeHandler):
    """A custom model folder holding ``model.onnx``."""

    def init(self) -> None:
        path = str(self.plan["model_path"])
        if os.path.isdir(path):
            folder, file = path, os.path.join(path, str(self.plan.get("onnx_file", "model.onnx")))
        else:
            folder, file = os.path.dirname(path), path
        if not os.path.isfile(file):
            raise FileNotFoundError(f"no ONNX model at {file}")
        name = str(self.plan.get("model_name") or os.path.basename(folder.rstrip(os.sep)))
        version = str(self.plan.get("model_version") or "1")
        self.models = {name: OnnxModel(name, version, file, self.threads)}


class TritonHandler(_KServeHandler):
    """A Triton model repository whose models all use the ONNX Runtime backend."""

    def init(self) -> None:
        root = str(self.plan["model_path"])
        entries = self.plan.get("triton_models") or []
        if not entries:
            raise ValueError("the plan lists no triton_models")
        for entry in entries:
            name = str(entry["name"])
            file = os.path.join(root, str(entry["onnx_file"]))
            self.models[name] = OnnxModel(
                name, str(entry.get("version", "1")), file, self.threads, declared=entry
            )
