"""ONNX Runtime behind raw ASGI: POST {"data": [[...]]} -> {output name: values}.

The model is ``$PEER_MODEL`` (a .onnx file); one session, one intra-op thread, as Mill's
no-code ONNX replica sets it.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import onnxruntime as ort

from ._asgi import json_app

_options = ort.SessionOptions()
_options.intra_op_num_threads = 1
_options.inter_op_num_threads = 1
_session = ort.InferenceSession(
    os.environ["PEER_MODEL"], _options, providers=["CPUExecutionProvider"]
)
_input = _session.get_inputs()[0]
_dtype = np.float32 if _input.type == "tensor(float)" else np.float64
_outputs = [o.name for o in _session.get_outputs()]


def score(body: dict[str, Any]) -> dict[str, Any]:
    values = _session.run(None, {_input.name: np.asarray(body["data"], dtype=_dtype)})
    return {name: value.tolist() for name, value in zip(_outputs, values, strict=True)}


app = json_app(score)
