"""What a replica plan says about the model: the deployment kind and the no-code fields.

Computed in the control plane from a local copy of the model's files, so the replica (which
runs in the deployment's environment, without Mill) gets everything it needs in its plan
and parses nothing but JSON. See ``mill.runtime.nocode_onnx`` for the fields it reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mill.errors import NotSupportedError, SpecError
from mill.specs.model_formats import inspect_model

__all__ = ["deployment_kind", "replica_model_fields"]

ONNX_FILE = "model.onnx"
_ONNX_BACKENDS = ("onnxruntime", "onnxruntime_onnx")


def deployment_kind(model_type: str | None, model_path: Path | None, has_code: bool) -> str:
    """``"code"``, ``"mlflow"``, ``"onnx"`` or ``"triton"``: how a replica serves it.

    A scoring script always wins (Azure runs ``score.py`` even for an MLflow model). Without
    one: an ``mlflow_model`` or ``triton_model`` is served no-code, and a custom model only
    when its folder holds ``model.onnx``.
    """
    if has_code:
        return "code"
    if model_type == "mlflow_model":
        return "mlflow"
    if model_type == "triton_model":
        return "triton"
    if model_path is not None and _onnx_file(model_path) is not None:
        return "onnx"
    if model_path is None:
        raise SpecError.one(
            "a deployment without code_configuration needs a model",
            field="model",
            allowed="an mlflow_model, a triton_model, or a custom model folder with model.onnx",
        )
    raise SpecError.one(
        "a custom model without a scoring script is served only when it holds model.onnx",
        field="code_configuration",
        allowed="code_configuration: {code, scoring_script}, or a model folder with model.onnx,"
        " or a model of type mlflow_model / triton_model",
    )


def replica_model_fields(kind: str, model_path: Path) -> dict[str, Any]:
    """The plan fields a replica of ``kind`` needs for the model at ``model_path``."""
    if kind in ("code", "mlflow"):
        return {"model_path": str(model_path)}
    if kind == "onnx":
        onnx = _onnx_file(model_path)
        if onnx is None:
            raise SpecError.one(
                f"{model_path.name} holds no {ONNX_FILE}",
                field="model.path",
                value=model_path.name,
                allowed=f"a folder holding {ONNX_FILE}, or a .onnx file",
            )
        folder = model_path if model_path.is_dir() else model_path.parent
        return {
            "model_path": str(folder),
            "onnx_file": onnx.name,
            "model_name": folder.name,
            "model_version": "1",
        }
    if kind == "triton":
        return {"model_path": str(model_path), "triton_models": _triton_models(model_path)}
    raise NotSupportedError(f"replicas cannot serve deployments of kind {kind!r}")


def _onnx_file(path: Path) -> Path | None:
    if path.is_file():
        return path if path.suffix == ".onnx" else None
    candidate = path / ONNX_FILE
    return candidate if candidate.is_file() else None


def _triton_models(root: Path) -> list[dict[str, Any]]:
    """Each model of the repository as a replica serves it: the registry's own check of the
    layout (``inspect_model``), then the ONNX backend and the latest version."""
    summary = inspect_model("triton_model", root).summary
    return [_triton_model(root, model) for model in summary["models"]]


def _triton_model(root: Path, model: dict[str, Any]) -> dict[str, Any]:
    name = str(model["name"])
    folder = root if (root / "config.pbtxt").is_file() else root / name
    shown = folder.name if folder == root else f"{root.name}/{folder.name}"
    backend = str(model.get("backend") or "")
    if backend not in _ONNX_BACKENDS:
        raise NotSupportedError(
            f"{shown}/config.pbtxt uses the {backend or '(unnamed)'} backend; Mill serves Triton"
            ' models with the ONNX Runtime backend only (backend: "onnxruntime" or platform:'
            ' "onnxruntime_onnx"); convert the model to ONNX (mill model convert)'
        )
    latest = str(model["versions"][-1])  # Triton's default version policy: the latest
    return {
        "name": name,
        "version": latest,
        "onnx_file": (folder / latest / ONNX_FILE).relative_to(root).as_posix(),
        "max_batch_size": int(model.get("max_batch_size") or 0),
        "inputs": [_tensor(t, shown, "input") for t in model.get("inputs", [])],
        "outputs": [_tensor(t, shown, "output") for t in model.get("outputs", [])],
    }


def _tensor(tensor: dict[str, Any], shown: str, side: str) -> dict[str, Any]:
    name = tensor.get("name")
    data_type = str(tensor.get("data_type") or "")
    if not name or not data_type:
        raise SpecError.one(
            f"{shown}/config.pbtxt: every {side} needs a name and a data_type",
            field=side,
            value=tensor,
            allowed=f'{side} [ {{ name: "x", data_type: TYPE_FP32, dims: [ 4 ] }} ]',
        )
    datatype = data_type.removeprefix("TYPE_")
    # Triton's TYPE_STRING is BYTES on the KServe v2 wire.
    datatype = "BYTES" if datatype == "STRING" else datatype
    return {"name": name, "datatype": datatype, "dims": list(tensor.get("dims") or [])}
