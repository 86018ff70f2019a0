"""``mill model package``: a registered version as a folder that deploys anywhere.

The folder holds the model's files (``model/``), its environment (``environment/conda.yaml``),
a scoring script with Azure ML's ``init()``/``run(raw_data)`` contract (``score.py``, for
MLflow and ONNX models; a Triton repository needs none), Azure ML endpoint and deployment
YAML, and a sample request when the model has an input example. It is built on the
control plane under ``registry/.packages/<id>/`` and handed back as a storage URI.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import yaml

from mill.domain.entities import ModelVersion
from mill.errors import NotSupportedError
from mill.services import models
from mill.services.context import Context
from mill.services.launch import resolve_uri
from mill.services.workspaces import DEFAULT_DATASTORE

__all__ = ["package"]

_PACKAGES = ".packages"
_KEEP_SECONDS = 24 * 3600
_BASE_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"

_MLFLOW_SCORE = '''\
"""Scoring script for an MLflow model (Azure ML's init()/run() contract).

Request: {"input_data": {"columns": [...], "data": [[...], ...]}} (split), a list of records,
or {"input_data": [[...], ...]}. Answer: the predictions as a JSON list.
"""

import json
import os

import mlflow.pyfunc
import pandas as pd

model = None


def init():
    global model
    model = mlflow.pyfunc.load_model(os.path.join(os.environ["AZUREML_MODEL_DIR"], "{folder}"))


def run(raw_data):
    payload = json.loads(raw_data) if isinstance(raw_data, (str, bytes)) else raw_data
    data = payload.get("input_data", payload) if isinstance(payload, dict) else payload
    if isinstance(data, dict) and "columns" in data:
        frame = pd.DataFrame(data["data"], columns=data["columns"])
    else:
        frame = pd.DataFrame(data)
    result = model.predict(frame)
    return result.tolist() if hasattr(result, "tolist") else list(result)
'''

_ONNX_SCORE = '''\
"""Scoring script for an ONNX model, run by ONNX Runtime (Azure ML's init()/run() contract).

Request: {"data": [[...], ...]} for the model's first input, or {"inputs": {name: [...]}}.
Answer: {output name: values}.
"""

import json
import os

import numpy as np
import onnxruntime

session = None


def init():
    global session
    path = os.path.join(os.environ["AZUREML_MODEL_DIR"], "{folder}", "model.onnx")
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])


def run(raw_data):
    payload = json.loads(raw_data) if isinstance(raw_data, (str, bytes)) else raw_data
    first = session.get_inputs()[0]
    given = payload.get("inputs") or {first.name: payload["data"]}
    feeds = {}
    for item in session.get_inputs():
        kind = np.int64 if "int64" in item.type else np.float32
        feeds[item.name] = np.asarray(given[item.name], dtype=kind)
    names = [o.name for o in session.get_outputs()]
    return {n: np.asarray(v).tolist() for n, v in zip(names, session.run(names, feeds))}
'''


def package(ctx: Context, workspace: str, name: str, version: str) -> dict[str, Any]:
    """Build the package of ``name:version``; its storage URI and what it holds."""
    model = models.resolve(ctx, workspace, name, version)
    source = resolve_uri(ctx, workspace, model.path.rstrip("/"))
    root = _packages_root(ctx, workspace)
    folder = root / uuid.uuid4().hex / f"{model.name}-{model.version}"
    (folder / "model").mkdir(parents=True)
    try:
        copy = folder / "model" / source.name
        shutil.copytree(source, copy) if source.is_dir() else shutil.copy2(source, copy)
        files = _write(folder, model, source)
    except BaseException:
        shutil.rmtree(folder.parent, ignore_errors=True)
        raise
    relative = folder.relative_to(resolve_uri(ctx, workspace, _uri("")))
    return {
        "uri": _uri(relative.as_posix()) + "/",
        "model": f"azureml:{model.name}:{model.version}",
        "files": files,
    }


def _write(folder: Path, model: ModelVersion, source: Path) -> list[str]:
    facts = model.flavors or {}
    has_onnx = source.is_dir() and (source / "model.onnx").is_file()
    deployment: dict[str, Any] = {
        "$schema": "https://azuremlschemas.azureedge.net/latest/managedOnlineDeployment.schema.json",
        "name": "default",
        "endpoint_name": f"{model.name}-endpoint".lower().replace("_", "-")[:32],
        "model": {"path": f"./model/{source.name}"},
        "instance_type": "Standard_DS3_v2",
        "instance_count": 1,
    }
    if model.type == "mlflow_model":
        (folder / "score.py").write_text(_MLFLOW_SCORE.replace("{folder}", source.name))
        conda = _mlflow_conda(source)
    elif model.type == "custom_model" and has_onnx:
        (folder / "score.py").write_text(_ONNX_SCORE.replace("{folder}", source.name))
        conda = _conda(["onnxruntime", "numpy"])
    elif model.type == "triton_model":
        conda = None  # Triton serves the repository as it is: no code, no environment
    else:
        raise NotSupportedError(
            f"cannot package model azureml:{model.name}:{model.version}: a {model.type} "
            "without model.onnx has no scoring script Mill can write",
            hint="package an mlflow_model, an ONNX model (mill model convert --to onnx) "
            "or a triton_model",
        )
    if conda is not None:
        (folder / "environment").mkdir()
        (folder / "environment" / "conda.yaml").write_text(yaml.safe_dump(conda, sort_keys=False))
        deployment["code_configuration"] = {"code": ".", "scoring_script": "score.py"}
        deployment["environment"] = {"image": _BASE_IMAGE, "conda_file": "environment/conda.yaml"}
    endpoint = {
        "$schema": "https://azuremlschemas.azureedge.net/latest/managedOnlineEndpoint.schema.json",
        "name": deployment["endpoint_name"],
        "auth_mode": "key",
    }
    (folder / "endpoint.yml").write_text(yaml.safe_dump(endpoint, sort_keys=False))
    (folder / "deployment.yml").write_text(yaml.safe_dump(deployment, sort_keys=False))
    example = source / "input_example.json" if source.is_dir() else None
    if model.type == "mlflow_model" and example is not None and example.is_file():
        data = json.loads(example.read_text())
        (folder / "sample-request.json").write_text(json.dumps({"input_data": data}, indent=2))
    (folder / "README.md").write_text(_readme(model, facts, conda is not None))
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _mlflow_conda(source: Path) -> dict[str, Any]:
    conda_file = source / "conda.yaml"
    if conda_file.is_file():
        loaded = yaml.safe_load(conda_file.read_text())
        if isinstance(loaded, dict):
            return loaded
    requirements = source / "requirements.txt"
    pins = (
        [line.strip() for line in requirements.read_text().splitlines() if line.strip()]
        if requirements.is_file()
        else ["mlflow"]
    )
    return _conda([*pins, "pandas"])


def _conda(pip: list[str]) -> dict[str, Any]:
    return {
        "name": "model-env",
        "channels": ["conda-forge"],
        "dependencies": [
            "python=3.11",
            "pip",
            {"pip": [*pip, "azureml-inference-server-http"]},
        ],
    }


def _readme(model: ModelVersion, facts: dict[str, Any], scored: bool) -> str:
    lines = [
        f"# {model.name} version {model.version} ({model.type})",
        "",
        "Packaged by `mill model package`. Deploy with Azure ML (`az ml online-endpoint create",
        "-f endpoint.yml` then `az ml online-deployment create -f deployment.yml`) or run the",
        "scoring script with the open-source inference server:",
        "",
        "    AZUREML_MODEL_DIR=model azmlinfsrv --entry_script score.py",
        "",
    ]
    if not scored:
        lines[5:8] = ["Triton serves `model/` as a model repository: no scoring script.", ""]
    if facts.get("signature"):
        lines += ["Signature:", "", "    " + json.dumps(facts["signature"]), ""]
    return "\n".join(lines)


def _packages_root(ctx: Context, workspace: str) -> Path:
    root = resolve_uri(ctx, workspace, _uri(_PACKAGES))
    root.mkdir(parents=True, exist_ok=True)
    cutoff = time.time() - _KEEP_SECONDS
    for old in root.iterdir():  # packages are fetched at once; old ones are leftovers
        if old.stat().st_mtime < cutoff:
            shutil.rmtree(old, ignore_errors=True)
    return root


def _uri(relative: str) -> str:
    path = f"{models.REGISTRY}/{relative}".rstrip("/")
    return f"azureml://datastores/{DEFAULT_DATASTORE}/paths/{path}"
