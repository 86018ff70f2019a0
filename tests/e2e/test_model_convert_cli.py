"""mill model convert from the CLI against a real server: CSV sample, Triton layout, errors."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from tests.e2e.harness import MillHome

pytest.importorskip("skl2onnx", reason="skl2onnx is in the dev extra")
pytest.importorskip("onnxruntime", reason="onnxruntime is in the dev extra")


def test_cli_converts_a_pickled_pipeline_with_a_csv_sample(mill: MillHome, tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.random.default_rng(2).random((30, 2))
    pipeline = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, x[:, 0] > 0.5)
    (tmp_path / "clf.pkl").write_bytes(pickle.dumps(pipeline))
    (tmp_path / "sample.csv").write_text("a,b\n0.1,0.9\n0.8,0.3\n0.55,0.5\n")
    mill.json("model", "create", "--name", "clf", "--type", "custom_model",
              "--path", str(tmp_path / "clf.pkl"))  # fmt: skip

    made = mill.json("model", "convert", "--name", "clf", "--version", "1", "--to", "onnx",
                     "--triton", "--sample-input", str(tmp_path / "sample.csv"))  # fmt: skip
    assert (made["version"], made["type"]) == ("2", "triton_model")
    assert made["lineage"]["parent"] == "azureml:clf:1"
    assert made["conversion"]["samples"] == 3
    assert made["conversion"]["max_abs_diff"] <= made["conversion"]["tolerance"]["atol"]

    refused = mill.cli("model", "convert", "-n", "clf", "-v", "2", check=False)
    assert refused.returncode == 2
    assert "Error: " in refused.stderr and "triton_model" in refused.stderr
    assert [v["version"] for v in mill.json("model", "list", "--name", "clf")] == ["2", "1"]
