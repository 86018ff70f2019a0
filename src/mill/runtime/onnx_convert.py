"""Convert one model to ONNX in a child process: ``python onnx_convert.py request.json``.

The control plane (``mill.services.conversion``) writes a request naming the model's files,
its framework (``sklearn`` or ``pytorch``), a sample input and where to write; this script
loads the model, converts it (skl2onnx or ``torch.onnx``), runs the original and the ONNX
model (onnxruntime) on the sample, compares them, and writes ``model.onnx`` (or a Triton
repository) and a result JSON. Loading a model unpickles user objects and converters can
crash, so this never runs inside the server. Only the standard library is imported at the
top: the ML libraries are imported when needed, and a missing one is reported by name.
"""

from __future__ import annotations

import json
import math
import re
import sys
import traceback
from pathlib import Path
from typing import Any

# ONNX TensorProto element types -> Triton data types.
_TRITON_TYPES = {
    1: "TYPE_FP32",
    2: "TYPE_UINT8",
    3: "TYPE_INT8",
    4: "TYPE_UINT16",
    5: "TYPE_INT16",
    6: "TYPE_INT32",
    7: "TYPE_INT64",
    8: "TYPE_STRING",
    9: "TYPE_BOOL",
    10: "TYPE_FP16",
    11: "TYPE_FP64",
    12: "TYPE_UINT32",
    13: "TYPE_UINT64",
    16: "TYPE_BF16",
}
_TRITON_MAX_BATCH = 64
_GENERATED_ROWS = 8
_PICKLES = (".pkl", ".pickle", ".joblib")


class ConversionFailed(Exception):
    """A reason this model cannot be converted, for the user (``kind`` picks the status)."""

    def __init__(self, kind: str, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.kind, self.message, self.hint = kind, message, hint


def _need(module: str, what: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = module.split(".")[0]
        raise ConversionFailed(
            "missing_library",
            f"{what} needs the Python package {package!r}, which the converter's "
            f"interpreter ({sys.executable}) cannot import: {exc}",
            hint=f"install it into the control plane's environment: pip install {package}",
        ) from None


# -- sample input -----------------------------------------------------------------------


def _sample(request: dict[str, Any]) -> tuple[Any, list[str] | None]:
    """The sample as a numpy array (tensors) or DataFrame (columns) and its column names."""
    np = _need("numpy", "converting a model")
    sample = request.get("sample")
    if sample is None:
        return _generated(request.get("signature_inputs") or [])
    columns = sample.get("columns")
    data = sample.get("data")
    if columns:
        pd = _need("pandas", "a sample with named columns")
        return pd.DataFrame(data, columns=columns), list(columns)
    array = np.asarray(data)
    if array.dtype.kind == "f":
        array = array.astype(request.get("dtype") or "float32")
    return array, None


def _generated(inputs: list[dict[str, Any]]) -> tuple[Any, list[str] | None]:
    """Random input shaped by an MLflow signature (numeric columns or one tensor)."""
    np = _need("numpy", "converting a model")
    rng = np.random.default_rng(0)
    if len(inputs) == 1 and inputs[0].get("type") == "tensor":
        spec = inputs[0].get("tensor-spec") or {}
        shape = [_GENERATED_ROWS if d in (-1, None) else int(d) for d in spec.get("shape", [])]
        dtype = str(spec.get("dtype", "float32"))
        if not shape or np.dtype(dtype).kind not in "fiu":
            raise ConversionFailed("bad_input", f"cannot make a sample for tensor {spec}")
        return rng.random(shape).astype(dtype), None
    columns: dict[str, Any] = {}
    for i, column in enumerate(inputs):
        kind = column.get("type")
        name = str(column.get("name", i))
        if kind in ("double", "float"):
            columns[name] = rng.random(_GENERATED_ROWS).astype(
                "float64" if kind == "double" else "float32"
            )
        elif kind in ("long", "integer"):
            columns[name] = rng.integers(0, 5, _GENERATED_ROWS)
        else:
            raise ConversionFailed(
                "bad_input",
                f"cannot make a random sample for column {name!r} of type {kind!r}",
                hint="give one with --sample-input FILE (.json or .csv)",
            )
    pd = _need("pandas", "a sample with named columns")
    frame = pd.DataFrame(columns)
    return frame, list(columns)


# -- scikit-learn -----------------------------------------------------------------------


def _load_sklearn(request: dict[str, Any]) -> Any:
    path = Path(request["model_path"])
    if request.get("loader") == "mlflow":
        try:
            import mlflow.sklearn  # the MLmodel's own loader: pickle, cloudpickle or skops
        except ImportError:
            flavor = request.get("flavor") or {}
            if flavor.get("serialization_format") not in (None, "pickle", "cloudpickle"):
                _need("mlflow", f"a {flavor.get('serialization_format')} sklearn model")
            path = path / str(flavor.get("pickled_model", "model.pkl"))
        else:
            return mlflow.sklearn.load_model(str(path))
    if path.suffix == ".joblib":
        return _need("joblib", "a .joblib model").load(path)
    import pickle

    with path.open("rb") as f:
        return pickle.load(f)


def _convert_sklearn(request: dict[str, Any]) -> dict[str, Any]:
    np = _need("numpy", "converting a model")
    sklearn_base = _need("sklearn.base", "a scikit-learn model")
    _need("onnxruntime", "checking the ONNX model")
    skl2onnx = _need("skl2onnx", "converting a scikit-learn model")
    model = _load_sklearn(request)
    if not isinstance(model, sklearn_base.BaseEstimator):
        kind = f"{type(model).__module__}.{type(model).__qualname__}"
        raise ConversionFailed(
            "unsupported",
            f"{Path(request['model_path']).name} holds a {kind}, not a scikit-learn estimator",
        )
    sample, columns = _sample(request)
    if columns is None:
        sample = np.atleast_2d(sample)
    initial_types, feed = _sklearn_inputs(model, sample, columns)
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    classifier = sklearn_base.is_classifier(final)
    options = {id(final): {"zipmap": False}} if classifier else None
    try:
        onnx_model = skl2onnx.to_onnx(
            model,
            initial_types=initial_types,
            target_opset=request.get("opset"),
            options=options,
        )
    except Exception as exc:  # skl2onnx raises RuntimeError/ValueError/NotImplementedError
        raise _sklearn_failure(exc) from None
    session = _session(onnx_model)
    got = dict(zip([o.name for o in session.get_outputs()], session.run(None, feed), strict=True))
    names = list(got)
    compared: list[tuple[str, Any, Any, bool]] = []
    if classifier:
        compared.append((names[0], model.predict(sample), got[names[0]], True))
        if hasattr(model, "predict_proba") and len(names) > 1:
            compared.append((names[1], model.predict_proba(sample), got[names[1]], False))
    elif hasattr(model, "predict"):
        compared.append((names[0], model.predict(sample), got[names[0]], False))
    else:
        compared.append((names[0], model.transform(sample), got[names[0]], False))
    return _finish(request, onnx_model, compared, len(sample), "skl2onnx", skl2onnx.__version__)


def _sklearn_inputs(model: Any, sample: Any, columns: list[str] | None) -> tuple[list, dict]:
    """One float tensor for numeric input; one input per column for mixed or named columns."""
    np = _need("numpy", "converting a model")
    types = _need("skl2onnx.common.data_types", "converting a scikit-learn model")
    if columns is None:
        values = np.asarray(sample, dtype=np.float32)
        return [("input", types.FloatTensorType([None, values.shape[1]]))], {"input": values}
    numeric = all(sample[c].dtype.kind in "fiub" for c in columns)
    if numeric and not _has_column_transformer(model):
        values = sample.to_numpy(dtype=np.float32)
        return [("input", types.FloatTensorType([None, len(columns)]))], {"input": values}
    initial, feed = [], {}
    for column in columns:
        kind = sample[column].dtype.kind
        if kind == "f":
            tensor, values = types.FloatTensorType, sample[[column]].to_numpy(np.float32)
        elif kind in "iub":
            tensor, values = types.Int64TensorType, sample[[column]].to_numpy(np.int64)
        else:
            tensor, values = types.StringTensorType, sample[[column]].astype(str).to_numpy()
        initial.append((column, tensor([None, 1])))
        feed[column] = values
    return initial, feed


def _has_column_transformer(model: Any) -> bool:
    if type(model).__name__ == "ColumnTransformer":
        return True
    return any(_has_column_transformer(step) for _, step in getattr(model, "steps", []))


def _sklearn_failure(exc: Exception) -> ConversionFailed:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    missing = re.search(r"<class '([^']+)'>", text)
    if missing and ("shape calculator" in text or "converter" in text.lower()):
        return ConversionFailed(
            "unsupported",
            f"skl2onnx has no ONNX converter for {missing.group(1)}",
            hint="the estimators skl2onnx supports are listed at "
            "https://onnx.ai/sklearn-onnx/supported.html",
        )
    return ConversionFailed("unsupported", f"skl2onnx could not convert the model: {text}")


# -- PyTorch ----------------------------------------------------------------------------


def _load_torch(request: dict[str, Any]) -> Any:
    torch = _need("torch", "converting a PyTorch model")
    path = Path(request["model_path"])
    if request.get("loader") == "mlflow":
        try:
            import mlflow.pytorch
        except ImportError:
            data = path / str((request.get("flavor") or {}).get("model_data", "data"))
            found = sorted(data.glob("model.pt*"))
            if not found:
                raise ConversionFailed("unsupported", f"no model file under {data.name}/") from None
            path = found[0]
        else:
            return mlflow.pytorch.load_model(str(path), map_location="cpu")
    if path.suffix == ".pt2":
        return torch.export.load(str(path)).module()
    try:
        return torch.jit.load(str(path), map_location="cpu")  # TorchScript
    except Exception:
        pass
    loaded = torch.load(str(path), map_location="cpu", weights_only=False)
    if isinstance(loaded, dict):
        raise ConversionFailed(
            "unsupported",
            f"{path.name} holds a state dict (weights only), not a model",
            hint="save the whole model (torch.save(model, ...)) or TorchScript "
            "(torch.jit.script(model).save(...)), or log it with mlflow.pytorch",
        )
    if not isinstance(loaded, torch.nn.Module):
        raise ConversionFailed(
            "unsupported", f"{path.name} holds a {type(loaded).__name__}, not a torch.nn.Module"
        )
    return loaded


def _convert_torch(request: dict[str, Any]) -> dict[str, Any]:
    torch = _need("torch", "converting a PyTorch model")
    onnx = _need("onnx", "converting a PyTorch model")
    _need("onnxruntime", "checking the ONNX model")
    np = _need("numpy", "converting a model")
    model = _load_torch(request)
    try:
        model.eval()
    except NotImplementedError:  # a module from torch.export (MLflow's .pt2) has no modes
        pass
    sample, _columns = _sample(request)
    values = np.asarray(sample.to_numpy() if hasattr(sample, "to_numpy") else sample)
    if values.dtype.kind == "f" or values.dtype == object:
        values = values.astype(np.float32)  # what torch modules take unless told otherwise
    tensor = torch.from_numpy(np.ascontiguousarray(values))
    with torch.no_grad():
        expected = _flat_outputs(model(tensor))
    output_names = (
        ["output"] if len(expected) == 1 else [f"output_{i}" for i in range(len(expected))]
    )
    target = Path(request["work_dir"]) / "exported.onnx"
    try:
        torch.onnx.export(
            model,
            (tensor,),
            str(target),
            dynamo=False,  # the TorchScript exporter: no onnxscript needed, takes ScriptModules
            input_names=["input"],
            output_names=output_names,
            dynamic_axes={n: {0: "batch"} for n in ["input", *output_names]},
            opset_version=request.get("opset"),
            training=torch.onnx.TrainingMode.PRESERVE,
        )
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConversionFailed(
            "unsupported", f"torch.onnx could not export the model: {first}"
        ) from None
    onnx_model = onnx.load(str(target))
    session = _session(onnx_model)
    got = session.run(None, {session.get_inputs()[0].name: values})
    compared = [
        (name, want.detach().numpy(), have, False)
        for name, want, have in zip(output_names, expected, got, strict=True)
    ]
    return _finish(request, onnx_model, compared, len(values), "torch.onnx", torch.__version__)


def _flat_outputs(result: Any) -> list[Any]:
    if isinstance(result, (tuple, list)):
        return [t for item in result for t in _flat_outputs(item)]
    if isinstance(result, dict):
        return [t for item in result.values() for t in _flat_outputs(item)]
    return [result]


# -- checking and writing ---------------------------------------------------------------


def _session(onnx_model: Any) -> Any:
    ort = _need("onnxruntime", "checking the ONNX model")
    try:
        return ort.InferenceSession(
            onnx_model.SerializeToString(), providers=["CPUExecutionProvider"]
        )
    except Exception as exc:
        raise ConversionFailed(
            "unsupported", f"onnxruntime cannot load the result: {exc}"
        ) from None


def _finish(
    request: dict[str, Any],
    onnx_model: Any,
    compared: list[tuple[str, Any, Any, bool]],
    samples: int,
    converter: str,
    converter_version: str,
) -> dict[str, Any]:
    np = _need("numpy", "converting a model")
    atol, rtol = float(request["atol"]), float(request["rtol"])
    worst = 0.0
    checks = []
    for name, want, have, exact in compared:
        want, have = np.asarray(want), np.asarray(have)
        if want.size != have.size:
            raise ConversionFailed(
                "mismatch",
                f"the ONNX output {name!r} has {have.size} values, the original {want.size}",
            )
        want, have = want.reshape(-1), have.reshape(-1)
        if exact:
            differ = int(
                sum(1 for a, b in zip(want.tolist(), have.tolist(), strict=True) if a != b)
            )
            checks.append({"output": name, "compare": "exact", "differing": differ})
            if differ:
                raise ConversionFailed(
                    "mismatch",
                    f"the ONNX model predicts a different label for {differ} of {want.size} "
                    f"sample rows (output {name!r})",
                    hint="nothing was registered; the original model is unchanged",
                )
            continue
        want64, have64 = want.astype(np.float64), have.astype(np.float64)
        diff = float(np.max(np.abs(want64 - have64))) if want.size else 0.0
        if math.isnan(diff):
            diff = math.inf
        worst = max(worst, diff)
        close = bool(np.all(np.abs(want64 - have64) <= atol + rtol * np.abs(want64)))
        checks.append({"output": name, "compare": "float", "max_abs_diff": diff})
        if not close:
            raise ConversionFailed(
                "mismatch",
                f"the ONNX model disagrees with the original on output {name!r}: max abs "
                f"diff {diff:.3g} is over the tolerance (atol {atol:g}, rtol {rtol:g})",
                hint="nothing was registered; the original model is unchanged",
            )
    out = Path(request["out_dir"])
    triton = request.get("triton_name")
    target = out / triton / "1" / "model.onnx" if triton else out / "model.onnx"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(onnx_model.SerializeToString())
    inputs, outputs = _graph_tensors(onnx_model)
    if triton:
        (out / triton / "config.pbtxt").write_text(_triton_config(triton, inputs, outputs))
    opset = next((o.version for o in onnx_model.opset_import if o.domain in ("", "ai.onnx")), None)
    return {
        "ok": True,
        "opset": opset,
        "max_abs_diff": worst,
        "tolerance": {"atol": atol, "rtol": rtol, "labels": "exact"},
        "samples": samples,
        "checks": checks,
        "inputs": inputs,
        "outputs": outputs,
        "converter": {"name": converter, "version": converter_version},
        "python": sys.version.split()[0],
    }


def _graph_tensors(onnx_model: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    initializers = {i.name for i in onnx_model.graph.initializer}

    def describe(value: Any) -> dict[str, Any]:
        tensor = value.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim]
        return {"name": value.name, "elem_type": tensor.elem_type, "dims": dims}

    inputs = [describe(v) for v in onnx_model.graph.input if v.name not in initializers]
    return inputs, [describe(v) for v in onnx_model.graph.output]


def _triton_config(name: str, inputs: list[dict[str, Any]], outputs: list[dict[str, Any]]) -> str:
    """``config.pbtxt`` for onnxruntime; batching when every tensor has a free first axis."""
    tensors = inputs + outputs
    batched = all(len(t["dims"]) >= 2 and t["dims"][0] == -1 for t in tensors)

    def block(tensor: dict[str, Any]) -> str:
        dims = tensor["dims"][1:] if batched else tensor["dims"]
        data_type = _TRITON_TYPES.get(tensor["elem_type"])
        if data_type is None:
            raise ConversionFailed(
                "unsupported", f"Triton has no data type for ONNX tensor {tensor['name']!r}"
            )
        return (
            f'  {{\n    name: "{tensor["name"]}"\n    data_type: {data_type}\n'
            f"    dims: [ {', '.join(str(d) for d in dims)} ]\n  }}"
        )

    lines = [
        f'name: "{name}"',
        'platform: "onnxruntime_onnx"',
        f"max_batch_size: {_TRITON_MAX_BATCH if batched else 0}",
        "input [\n" + ",\n".join(block(t) for t in inputs) + "\n]",
        "output [\n" + ",\n".join(block(t) for t in outputs) + "\n]",
    ]
    if batched:
        lines.append("dynamic_batching { }")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    request_path = Path(argv[1])
    request = json.loads(request_path.read_text(encoding="utf-8"))
    try:
        if request["framework"] == "sklearn":
            result = _convert_sklearn(request)
        elif request["framework"] == "pytorch":
            result = _convert_torch(request)
        else:
            raise ConversionFailed("unsupported", f"unknown framework {request['framework']!r}")
    except ConversionFailed as exc:
        result = {"ok": False, "kind": exc.kind, "message": exc.message, "hint": exc.hint}
    except Exception as exc:  # loading or running user objects can fail any way at all
        traceback.print_exc()
        first = (str(exc).strip().splitlines() or [""])[0]
        result = {
            "ok": False,
            "kind": "failed",
            "message": f"{type(exc).__name__}: {first}" if first else type(exc).__name__,
        }
    Path(request["result"]).write_text(json.dumps(result, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
