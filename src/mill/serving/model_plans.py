"""What a replica plan says about the model: the deployment kind and the no-code fields.

Computed in the control plane from a local copy of the model's files, so the replica (which
runs in the deployment's environment, without Mill) gets everything it needs in its plan
and parses nothing but JSON. See ``mill.runtime.nocode_onnx`` for the fields it reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mill.errors import NotSupportedError, SpecError
from mill.specs.model_formats import read_triton_config

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
    if not root.is_dir():
        raise SpecError.one(
            "a triton_model must be a folder (a Triton model repository)",
            field="model.path",
            value=root.name,
            allowed="<repository>/<model>/config.pbtxt and <repository>/<model>/1/model.onnx",
        )
    if (root / "config.pbtxt").is_file():
        folders = [root]
    else:
        folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise SpecError.one(
            f"the Triton repository {root.name}/ holds no model folder",
            field="model.path",
            value=root.name,
            allowed="<repository>/<model>/config.pbtxt",
        )
    return [_triton_model(folder, root) for folder in folders]


def _triton_model(folder: Path, root: Path) -> dict[str, Any]:
    shown = folder.name if folder == root else f"{root.name}/{folder.name}"
    config_file = folder / "config.pbtxt"
    if not config_file.is_file():
        raise SpecError.one(
            f"{shown}/ has no config.pbtxt",
            field="model.path",
            value=shown,
            allowed=f"{shown}/config.pbtxt naming the model's inputs and outputs",
        )
    config = read_triton_config(config_file.read_text(encoding="utf-8", errors="replace"))
    backend = str(config.get("backend") or config.get("platform") or "")
    if backend not in _ONNX_BACKENDS:
        raise NotSupportedError(
            f"{shown}/config.pbtxt uses the {backend or '(unnamed)'} backend; Mill serves Triton"
            ' models with the ONNX Runtime backend only (backend: "onnxruntime" or platform:'
            ' "onnxruntime_onnx"); convert the model to ONNX (mill model convert)'
        )
    versions = sorted(
        (p for p in folder.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name)
    )
    with_onnx = [v for v in versions if (v / ONNX_FILE).is_file()]
    if not with_onnx:
        raise SpecError.one(
            f"{shown}/ has no version folder holding {ONNX_FILE}",
            field="model.path",
            value=shown,
            allowed=f"{shown}/1/{ONNX_FILE}",
        )
    latest = with_onnx[-1]  # Triton's default version policy serves the latest version
    relative = latest.relative_to(root) / ONNX_FILE
    return {
        "name": folder.name,
        "version": latest.name,
        "onnx_file": relative.as_posix(),
        "max_batch_size": int(config.get("max_batch_size") or 0),
        "inputs": [_tensor(t, shown, "input") for t in config.get("input", [])],
        "outputs": [_tensor(t, shown, "output") for t in config.get("output", [])],
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
