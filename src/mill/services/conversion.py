"""Model conversion: a registered scikit-learn or PyTorch version becomes an ONNX version.

``convert`` resolves the source version, picks its framework (the MLmodel's ``sklearn`` or
``pytorch`` flavor, or a custom_model's pickled estimator or ``.pt``/``.pth``/``.pt2``
file), finds a sample input (the request's, the MLmodel's saved input example, or random
input shaped by its signature), and runs ``mill/runtime/onnx_convert.py`` in a child
process of the control plane's interpreter: loading a model unpickles user objects and a
converter can crash, so neither happens in the server. The child converts, runs both
models on the sample and compares them (labels exactly, numbers within ``ATOL + RTOL·|x|``);
only a model that agrees is registered, as the next version of the same name: a
custom_model folder holding ``model.onnx``, or a triton_model repository
(``<name>/config.pbtxt``, ``<name>/1/model.onnx``). Its lineage names the parent version
and records the check. Anything that fails registers nothing.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mill.domain.entities import ModelVersion
from mill.errors import NotSupportedError, UsageError
from mill.runtime import onnx_convert
from mill.services import models
from mill.services.context import Context
from mill.services.launch import resolve_uri

__all__ = ["ATOL", "RTOL", "convert"]

ATOL = 1e-4
RTOL = 1e-4
_TIMEOUT_S = 900
_SKLEARN_FILES = (".pkl", ".pickle", ".joblib")
_TORCH_FILES = (".pt", ".pth", ".pt2")
_SUPPORTED = (
    "an mlflow_model with the sklearn or pytorch flavor, or a custom_model holding a "
    "pickled scikit-learn estimator (.pkl, .pickle, .joblib) or a PyTorch model "
    "(.pt, .pth, .pt2: TorchScript, torch.save of the whole model, or torch.export)"
)


@dataclass(frozen=True)
class _Plan:
    framework: str  # sklearn | pytorch
    loader: str  # mlflow | file
    model_path: Path
    flavor: dict[str, Any]


def convert(
    ctx: Context, workspace: str, name: str, version: str, body: dict[str, Any]
) -> dict[str, Any]:
    """Convert ``name:version`` as ``body`` asks; the new version plus a ``conversion`` report.

    ``body``: ``to`` (``onnx``), ``triton`` (bool), ``sample_input`` (inline JSON: MLflow's
    split, records or ``inputs`` forms, or a list of rows), ``opset`` (int, optional).
    """
    target, triton, opset = _options(body)
    source = models.resolve(ctx, workspace, name, version)
    parent = f"azureml:{source.name}:{source.version}"
    local = resolve_uri(ctx, workspace, source.path)
    plan = _plan(source, local, parent)
    sample, sample_from = _sample(source, local, body.get("sample_input"), parent)
    upload = models.new_upload(ctx, workspace, "triton" if triton else "onnx")
    out_dir = resolve_uri(ctx, workspace, upload["uri"])
    out_dir.mkdir(parents=True)
    try:
        request = {
            "framework": plan.framework,
            "loader": plan.loader,
            "model_path": str(plan.model_path),
            "flavor": plan.flavor,
            "sample": sample,
            "signature_inputs": _signature_inputs(source) if sample is None else None,
            "out_dir": str(out_dir),
            "triton_name": _triton_name(source.name) if triton else None,
            "opset": opset,
            "atol": ATOL,
            "rtol": RTOL,
        }
        result = _run_converter(request, parent)
        report = {
            "source": parent,
            "to": target,
            "format": "triton_model" if triton else "custom_model",
            "framework": plan.framework,
            "opset": result.get("opset"),
            "max_abs_diff": result.get("max_abs_diff"),
            "tolerance": result.get("tolerance"),
            "samples": result.get("samples"),
            "sample_from": sample_from,
            "checks": result.get("checks"),
            "inputs": result.get("inputs"),
            "outputs": result.get("outputs"),
            "converter": result.get("converter"),
        }
        created = models.create(
            ctx,
            workspace,
            {
                "name": source.name,
                "type": "triton_model" if triton else "custom_model",
                "path": upload["uri"],
                "description": f"ONNX conversion of {parent}",
                "tags": dict(source.tags),
                "properties": {"converted_from": parent, "onnx_opset": str(report["opset"])},
            },
            lineage={"parent": parent, "conversion": report},
            source={"kind": "conversion", "model": parent, "to": target},
        )
    finally:
        shutil.rmtree(out_dir.parent, ignore_errors=True)  # gone already when registered
    return {**models.read(created), "conversion": report}


def _options(body: dict[str, Any]) -> tuple[str, bool, int | None]:
    unknown = sorted(set(body) - {"to", "triton", "sample_input", "opset"})
    if unknown:
        raise UsageError(
            f"unknown conversion option(s): {', '.join(unknown)}",
            hint="allowed: to, triton, sample_input, opset",
        )
    target = body.get("to", "onnx")
    if target != "onnx":
        raise UsageError(f"cannot convert to {target!r}", hint="supported: onnx")
    triton = body.get("triton", False)
    if not isinstance(triton, bool):
        raise UsageError(f"triton must be true or false, not {triton!r}")
    opset = body.get("opset")
    if opset is not None and (isinstance(opset, bool) or not isinstance(opset, int) or opset < 7):
        raise UsageError(f"opset must be an ONNX opset number (7 or more), not {opset!r}")
    return target, triton, opset


def _plan(source: ModelVersion, local: Path, parent: str) -> _Plan:
    """Which framework loads this version's files, and from where."""
    if not local.exists():
        raise UsageError(f"the files of model {parent} are missing from {source.path}")
    if source.type == "mlflow_model":
        flavors = (source.flavors or {}).get("flavors") or {}
        for flavor, framework in (("sklearn", "sklearn"), ("pytorch", "pytorch")):
            if flavor in flavors:
                return _Plan(framework, "mlflow", local, dict(flavors[flavor] or {}))
        raise UsageError(
            f"cannot convert model {parent} to ONNX: its MLmodel flavors are "
            f"{', '.join(sorted(flavors)) or '(none)'}, and only sklearn and pytorch convert",
            hint=f"convertible: {_SUPPORTED}",
        )
    if source.type != "custom_model":
        raise UsageError(
            f"model {parent} is a {source.type}; only mlflow_model and custom_model convert",
            hint=f"convertible: {_SUPPORTED}",
        )
    if local.is_dir():
        if (local / "model.onnx").is_file():
            raise UsageError(f"model {parent} is ONNX already (it holds model.onnx)")
        candidates = sorted(
            p for p in local.rglob("*") if p.is_file() and p.suffix in _SKLEARN_FILES + _TORCH_FILES
        )
    else:
        candidates = [local] if local.suffix in _SKLEARN_FILES + _TORCH_FILES else []
    if len(candidates) != 1:
        found = ", ".join(p.relative_to(local).as_posix() for p in candidates[:5])
        raise UsageError(
            f"cannot convert model {parent} to ONNX: "
            + (
                f"it holds several model files ({found}); register the one to convert"
                if candidates
                else f"{local.name} is not a file it can load"
            ),
            hint=f"convertible: {_SUPPORTED}",
        )
    model_file = candidates[0]
    framework = "sklearn" if model_file.suffix in _SKLEARN_FILES else "pytorch"
    return _Plan(framework, "file", model_file, {})


# -- the sample input ------------------------------------------------------------------


def _sample(
    source: ModelVersion, local: Path, given: Any, parent: str
) -> tuple[dict[str, Any] | None, str]:
    """The sample as ``{columns, data}`` rows, or None to generate one from the signature."""
    if given is not None:
        return _normalize(given, "sample_input"), "request"
    example = (source.flavors or {}).get("input_example") or {}
    artifact = example.get("artifact_path")
    if source.type == "mlflow_model" and isinstance(artifact, str) and local.is_dir():
        file = (local / artifact).resolve()
        if file.is_relative_to(local.resolve()) and file.is_file():
            try:
                data = json.loads(file.read_text(encoding="utf-8"))
            except ValueError as exc:
                raise UsageError(f"model {parent}'s {artifact} is not JSON: {exc}") from None
            return _normalize(data, artifact), "input_example"
    if _signature_inputs(source):
        return None, "signature"
    raise UsageError(
        f"no sample input to check the conversion of model {parent} with: it has no saved "
        "input example and no input signature",
        hint="pass one: mill model convert ... --sample-input FILE (.json or .csv)",
    )


def _normalize(data: Any, origin: str) -> dict[str, Any]:
    """MLflow's serving forms, a split frame, records, columns or a plain tensor -> rows."""
    if isinstance(data, dict):
        for key in ("dataframe_split", "dataframe_records", "inputs", "instances"):
            if key in data:
                return _normalize(data[key], f"{origin}.{key}")
        if isinstance(data.get("columns"), list) and isinstance(data.get("data"), list):
            return _checked({"columns": [str(c) for c in data["columns"]], "data": data["data"]})
        values = list(data.values())
        if values and all(isinstance(v, list) and len(v) == len(values[0]) for v in values):
            rows = [list(r) for r in zip(*values, strict=True)]  # column -> values
            return _checked({"columns": [str(c) for c in data], "data": rows})
    if isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        columns = [str(c) for c in data[0]]
        return _checked({"columns": columns, "data": [[r.get(c) for c in columns] for r in data]})
    if isinstance(data, list) and data:
        return _checked({"columns": None, "data": data})
    raise UsageError(
        f"{origin} is not sample input Mill can read",
        hint="use MLflow's split form {columns: [...], data: [[...]]}, a list of records "
        "{column: value}, {inputs: [[...]]}, or a list of rows",
    )


def _checked(sample: dict[str, Any]) -> dict[str, Any]:
    columns = sample["columns"]
    if columns is not None:
        bad = [i for i, row in enumerate(sample["data"]) if not isinstance(row, list)]
        bad += [
            i
            for i, row in enumerate(sample["data"])
            if isinstance(row, list) and len(row) != len(columns)
        ]
        if bad:
            raise UsageError(
                f"sample row {bad[0]} does not have one value for each of the "
                f"{len(columns)} columns"
            )
    return sample


def _signature_inputs(source: ModelVersion) -> list[dict[str, Any]] | None:
    inputs = ((source.flavors or {}).get("signature") or {}).get("inputs")
    return inputs if isinstance(inputs, list) and inputs else None


def _triton_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


# -- the child process -----------------------------------------------------------------


def _run_converter(request: dict[str, Any], parent: str) -> dict[str, Any]:
    """Run ``onnx_convert.py`` on ``request``; its result, or the error it reported."""
    with tempfile.TemporaryDirectory(prefix="mill-convert-") as work:
        request_file, result_file = Path(work) / "request.json", Path(work) / "result.json"
        request_file.write_text(
            json.dumps({**request, "work_dir": work, "result": str(result_file)}),
            encoding="utf-8",
        )
        try:
            done = subprocess.run(
                [sys.executable, str(Path(onnx_convert.__file__)), str(request_file)],
                cwd=work,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            raise UsageError(
                f"converting model {parent} took over {_TIMEOUT_S} s and was stopped"
            ) from None
        if not result_file.is_file():
            raise UsageError(
                f"the converter stopped (exit code {done.returncode}) before it could say why "
                f"model {parent} did not convert",
                details={"stderr": done.stderr[-4000:]},
            )
        result: dict[str, Any] = json.loads(result_file.read_text(encoding="utf-8"))
    if result.get("ok"):
        return result
    message = f"cannot convert model {parent} to ONNX: {result.get('message')}"
    details = {"reason": result.get("kind")}
    if result.get("kind") == "missing_library":
        raise NotSupportedError(message, hint=result.get("hint"), details=details)
    raise UsageError(message, hint=result.get("hint"), details=details)
