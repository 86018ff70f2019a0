"""What a model's files say about it: MLmodel (MLflow) and Triton repositories, checked.

``inspect_model(type, path)`` reads a local copy of a model's files and returns the facts
the registry records (flavors, signature, environment files; Triton models, backends,
inputs and outputs), or raises :class:`~mill.errors.SpecError` naming the file and what is
wrong. Nothing is imported from MLflow or Triton: the formats are read as text.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mill.errors import SpecError, SpecIssue

from .yamldoc import load_yaml

__all__ = ["ModelFacts", "inspect_model", "read_triton_config"]

_ENV_FILES = ("conda.yaml", "python_env.yaml", "requirements.txt")
# Triton backends and the file each expects in a version folder.
_TRITON_FILES = {
    "onnxruntime": ("model.onnx",),
    "onnxruntime_onnx": ("model.onnx",),
    "tensorrt": ("model.plan",),
    "tensorrt_plan": ("model.plan",),
    "pytorch": ("model.pt",),
    "pytorch_libtorch": ("model.pt",),
    "tensorflow": ("model.savedmodel", "model.graphdef"),
    "tensorflow_savedmodel": ("model.savedmodel",),
    "tensorflow_graphdef": ("model.graphdef",),
    "python": ("model.py",),
    "openvino": ("model.xml",),
}
_ANY_MODEL_FILE = sorted({f for files in _TRITON_FILES.values() for f in files})


@dataclass(frozen=True)
class ModelFacts:
    summary: dict[str, Any]
    size_bytes: int
    file_count: int


def inspect_model(model_type: str, path: Path) -> ModelFacts:
    """Check ``path`` holds a model of ``model_type``; the facts worth recording."""
    size, count = _size(path)
    if model_type == "mlflow_model":
        return ModelFacts(_mlflow(path), size, count)
    if model_type == "triton_model":
        return ModelFacts(_triton(path), size, count)
    summary: dict[str, Any] = {"format": "custom_model"}
    if path.is_dir() and (path / "model.onnx").is_file():
        summary["onnx"] = "model.onnx"
    return ModelFacts(summary, size, count)


def _mlflow(path: Path) -> dict[str, Any]:
    mlmodel = path / "MLmodel"
    if not path.is_dir() or not mlmodel.is_file():
        what = "a file" if path.is_file() else "a folder without an MLmodel file"
        raise SpecError.one(
            f"an mlflow_model must be a folder holding an MLmodel file; {path.name} is {what}",
            field="path",
            value=path.name,
            allowed="a folder saved by mlflow.<flavor>.save_model / log_model",
            hint="register it as --type custom_model, or point at the MLflow model's folder",
        )
    doc = load_yaml(mlmodel)
    shown = f"{path.name}/MLmodel"
    flavors = doc.data.get("flavors")
    if not isinstance(flavors, dict) or not flavors:
        raise SpecError(
            [
                SpecIssue(
                    "an MLmodel file must list its flavors",
                    field="flavors",
                    file=shown,
                    line=doc.lines.get(("flavors",), 1),
                    allowed="a mapping such as python_function: {...}, sklearn: {...}",
                )
            ]
        )
    summary: dict[str, Any] = {
        "format": "mlflow_model",
        "flavors": {
            name: {
                k: v
                for k, v in (spec or {}).items()
                if isinstance(v, (str, int, float, bool)) and k != "data"
            }
            for name, spec in flavors.items()
        },
        "mlflow_version": doc.data.get("mlflow_version"),
        "model_uuid": doc.data.get("model_uuid"),
        "environment_files": sorted(f for f in _ENV_FILES if (path / f).is_file()),
    }
    signature = doc.data.get("signature")
    if isinstance(signature, dict):
        summary["signature"] = {k: _json_or_text(v) for k, v in signature.items()}
    example = doc.data.get("saved_input_example_info")
    if isinstance(example, dict):
        summary["input_example"] = example
    return summary


def _triton(path: Path) -> dict[str, Any]:
    """A Triton model repository: ``<model>/config.pbtxt`` and ``<model>/<n>/<model file>``.

    ``path`` may be the repository (one folder per model) or a single model's folder.
    """
    if not path.is_dir():
        raise SpecError.one(
            "a triton_model must be a folder (a Triton model repository)",
            field="path",
            value=path.name,
            allowed="<repository>/<model>/config.pbtxt and <repository>/<model>/1/model.onnx",
        )
    if (path / "config.pbtxt").is_file():
        models = [path]
    else:
        models = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not models:
        _triton_error(path, f"{path.name}/ holds no model folder", "<model>/config.pbtxt")
    found = [_triton_model(folder, path) for folder in models]
    return {"format": "triton_model", "models": found}


def _triton_model(folder: Path, root: Path) -> dict[str, Any]:
    shown = folder.relative_to(root.parent).as_posix()
    config_file = folder / "config.pbtxt"
    if not config_file.is_file():
        _triton_error(root, f"{shown}/ has no config.pbtxt", f"{shown}/config.pbtxt")
    config = read_triton_config(config_file.read_text(encoding="utf-8", errors="replace"))
    declared = config.get("name")
    if declared and declared != folder.name:
        _triton_error(
            root,
            f"{shown}/config.pbtxt names the model {declared!r}, but its folder is {folder.name!r}",
            f'name: "{folder.name}" (Triton requires the folder and the name to match)',
        )
    backend = str(config.get("backend") or config.get("platform") or "")
    wanted = _TRITON_FILES.get(backend, tuple(_ANY_MODEL_FILE))
    versions = sorted((p for p in folder.iterdir() if p.is_dir() and p.name.isdigit()), key=_num)
    if not versions:
        _triton_error(
            root, f"{shown}/ has no version folder", f"{shown}/1/{wanted[0]} (numbered folders)"
        )
    for version in versions:
        if not any((version / name).exists() for name in wanted):
            _triton_error(
                root,
                f"{shown}/{version.name}/ has no model file for backend {backend or '(none)'}",
                " or ".join(f"{shown}/{version.name}/{n}" for n in wanted),
            )
    return {
        "name": folder.name,
        "backend": backend or None,
        "versions": [v.name for v in versions],
        "max_batch_size": config.get("max_batch_size"),
        "inputs": config.get("input", []),
        "outputs": config.get("output", []),
    }


def read_triton_config(text: str) -> dict[str, Any]:
    """The parts of a ``config.pbtxt`` (protobuf text format) the registry and serving use.

    Top-level scalars (``name``, ``platform``, ``backend``, ``max_batch_size``) and the
    ``input``/``output`` lists with each tensor's ``name``, ``data_type`` and ``dims``.
    """
    text = re.sub(r"#[^\n]*", "", text)
    config: dict[str, Any] = {}
    for key in ("name", "platform", "backend"):
        match = re.search(rf'(?m)^\s*{key}\s*:\s*"([^"]*)"', _top_level(text))
        if match:
            config[key] = match.group(1)
    match = re.search(r"(?m)^\s*max_batch_size\s*:\s*(-?\d+)", _top_level(text))
    if match:
        config["max_batch_size"] = int(match.group(1))
    for section in ("input", "output"):
        tensors = []
        for body in _blocks(text, section):
            tensor: dict[str, Any] = {}
            name = re.search(r'name\s*:\s*"([^"]*)"', body)
            dtype = re.search(r"data_type\s*:\s*(\w+)", body)
            dims = re.search(r"dims\s*:\s*\[([^\]]*)\]", body)
            if name:
                tensor["name"] = name.group(1)
            if dtype:
                tensor["data_type"] = dtype.group(1)
            if dims:
                tensor["dims"] = [int(d) for d in dims.group(1).replace(" ", "").split(",") if d]
            tensors.append(tensor)
        if tensors:
            config[section] = tensors
    return config


def _blocks(text: str, key: str) -> list[str]:
    """The bodies of every ``{...}`` under ``key: [ ... ]`` or ``key { ... }``."""
    bodies: list[str] = []
    for match in re.finditer(rf"(?m)^\s*{key}\s*:?\s*(\[|\{{)", text):
        start = match.end() - 1
        end = _matching(text, start)
        inner = text[start + 1 : end]
        if text[start] == "{":
            bodies.append(inner)
        else:
            i = 0
            while (i := inner.find("{", i)) >= 0:
                j = _matching(inner, i)
                bodies.append(inner[i + 1 : j])
                i = j + 1
    return bodies


def _matching(text: str, start: int) -> int:
    opening, closing = text[start], "]" if text[start] == "[" else "}"
    depth = 0
    for i in range(start, len(text)):
        if text[i] == opening:
            depth += 1
        elif text[i] == closing:
            depth -= 1
            if depth == 0:
                return i
    return len(text)


def _top_level(text: str) -> str:
    """The text outside any ``{}``/``[]`` block (where a model's own fields are)."""
    out, depth = [], 0
    for ch in text:
        if ch in "{[":
            depth += 1
        elif ch in "}]":
            depth = max(0, depth - 1)
        elif depth == 0:
            out.append(ch)
    return "".join(out)


def _triton_error(root: Path, message: str, allowed: str) -> None:
    raise SpecError.one(
        f"not a Triton model repository: {message}",
        field="path",
        value=root.name,
        allowed=allowed,
    )


def _num(path: Path) -> int:
    return int(path.name)


def _json_or_text(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _size(path: Path) -> tuple[int, int]:
    if path.is_file():
        return path.stat().st_size, 1
    total = count = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            total += os.path.getsize(os.path.join(folder, name))
            count += 1
    return total, count
