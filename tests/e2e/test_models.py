"""The model registry end to end: the real CLI, a real server, real jobs that train models."""

from __future__ import annotations

import pickle
import textwrap
from pathlib import Path

from tests.e2e.harness import MillHome

TRAIN = textwrap.dedent(
    """\
    import os, pickle
    import mlflow
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    X = pd.DataFrame({"a": [0.0, 1.0, 0.9, 0.1], "b": [1.0, 0.0, 0.1, 0.8]})
    y = [0, 1, 1, 0]
    model = LogisticRegression().fit(X, y)
    os.makedirs("outputs", exist_ok=True)
    with open("outputs/model.pkl", "wb") as f:
        pickle.dump(model, f)
    mlflow.sklearn.log_model(model, name="model", input_example=X.head(1))
    print("trained")
    """
)


def _mlflow_folder(root: Path) -> Path:
    import mlflow.sklearn
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    X = pd.DataFrame({"a": [0.0, 1.0, 0.1, 0.9], "b": [1.0, 0.0, 0.8, 0.2]})
    model = LogisticRegression().fit(X, [0, 1, 0, 1])
    mlflow.sklearn.save_model(model, str(root), input_example=X.head(1))
    return root


def test_custom_and_mlflow_models_from_local_files(mill: MillHome, tmp_path: Path) -> None:
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"\x00\x01" * 1000)
    first = mill.json("model", "create", "--name", "w", "--path", str(weights))
    assert (first["version"], first["type"], first["size_bytes"]) == ("1", "custom_model", 2000)
    assert first["source"]["kind"] == "local_upload"
    assert first["path"].endswith("/registry/w/1/weights.bin")
    second = mill.json(
        "model", "create", "--name", "w", "--path", str(weights), "--tags", "team=vision"
    )
    assert second["version"] == "2" and second["tags"] == {"team": "vision"}
    assert [m["version"] for m in mill.json("model", "list", "--name", "w")] == ["2", "1"]

    folder = _mlflow_folder(tmp_path / "tree")
    (tmp_path / "model.yml").write_text(
        "$schema: https://azuremlschemas.azureedge.net/latest/model.schema.json\n"
        "name: tree\nversion: 5\ntype: mlflow_model\npath: tree\ndescription: a tree\n"
    )
    tree = mill.json("model", "create", "-f", str(tmp_path / "model.yml"))
    assert (tree["version"], tree["type"]) == ("5", "mlflow_model")
    assert {"python_function", "sklearn"} <= set(tree["flavors"])
    assert "requirements.txt" in tree["format"]["environment_files"]
    assert tree["format"]["signature"]["inputs"]

    mill.cli("model", "download", "--name", "tree", "-p", str(tmp_path / "dl"))
    assert (tmp_path / "dl/tree/MLmodel").read_text() == (folder / "MLmodel").read_text()
    mill.cli("model", "archive", "--name", "w", "--version", "2")
    assert mill.json("model", "show", "--name", "w", "--label", "latest")["version"] == "1"
    updated = mill.json(
        "model",
        "update",
        "--name",
        "w",
        "--version",
        "1",
        "--description",
        "d",
        "--stage",
        "Production",
    )
    assert (updated["description"], updated["stage"]) == ("d", "Production")


def test_model_bad_input_registers_nothing(mill: MillHome, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "model.pkl").write_bytes(b"x")
    no_mlmodel = mill.cli(
        "model",
        "create",
        "--name",
        "m",
        "--type",
        "mlflow_model",
        "--path",
        str(plain),
        check=False,
    )
    assert no_mlmodel.returncode == 2 and "MLmodel" in no_mlmodel.stderr
    assert "Traceback" not in no_mlmodel.stderr

    repo = tmp_path / "repo" / "resnet"
    (repo / "1").mkdir(parents=True)
    (repo / "config.pbtxt").write_text('name: "resnet"\nplatform: "onnxruntime_onnx"\n')
    wrong = mill.cli(
        "model",
        "create",
        "--name",
        "m",
        "--type",
        "triton_model",
        "--path",
        str(repo.parent),
        check=False,
    )
    assert wrong.returncode == 2 and "resnet/1/ has no model file" in wrong.stderr
    (repo / "1" / "model.onnx").write_bytes(b"onnx")
    good = mill.json(
        "model", "create", "--name", "resnet", "--type", "triton_model", "--path", str(repo.parent)
    )
    assert good["format"]["models"][0]["backend"] == "onnxruntime_onnx"

    for path, words in (
        (str(tmp_path / "missing"), "no such file or folder"),
        ("azureml://jobs/nojob/outputs/artifacts/paths/model", "job 'nojob' not found"),
        ("runs:/norun/model", "run 'norun' not found"),
    ):
        result = mill.cli("model", "create", "--name", "m", "--path", path, check=False)
        assert result.returncode == 2 and words in result.stderr, (path, result.stderr)
    assert "m" not in [m["name"] for m in mill.json("model", "list")]


def test_model_from_a_job_output_with_lineage(mill: MillHome, tmp_path: Path) -> None:
    code = tmp_path / "src"
    code.mkdir()
    (code / "train.py").write_text(TRAIN)
    data = tmp_path / "d.csv"
    data.write_text("a,b\n1,2\n")
    mill.cli("data", "create", "--name", "train-data", "--type", "uri_file", "--path", str(data))
    job = mill.submit(
        textwrap.dedent(
            """\
            command: python train.py
            code: src
            inputs:
              training:
                type: uri_file
                path: azureml:train-data@latest
            """
        ),
        folder=".",
    )
    assert mill.wait_job(job, timeout=120)["status"] == "Completed"

    # The MLflow model the job logged, found by name (MLflow 3: a LoggedModel).
    logged = mill.json(
        "model",
        "create",
        "--name",
        "clf",
        "--type",
        "mlflow_model",
        "--path",
        f"azureml://jobs/{job}/outputs/artifacts/paths/model",
    )
    assert logged["job_name"] == job and logged["run_id"] == job
    assert logged["lineage"]["inputs"]["training"]["asset"] == "azureml:train-data:1"
    assert "sklearn" in logged["flavors"]
    # The file it wrote to ./outputs, as a custom model; and the run's model by runs:/.
    pkl = mill.json(
        "model",
        "create",
        "--name",
        "clf-pkl",
        "--path",
        f"azureml://jobs/{job}/outputs/artifacts/paths/outputs/model.pkl",
    )
    assert pkl["type"] == "custom_model" and pkl["path"].endswith("/model.pkl")
    by_run = mill.json(
        "model", "create", "--name", "clf", "--type", "mlflow_model", "--path", f"runs:/{job}/model"
    )
    assert by_run["version"] == "2" and by_run["lineage"]["job"] == job

    shown = mill.json("job", "show", "--name", job)
    assert {m["id"] for m in shown["models"]} == {
        "azureml:clf:1",
        "azureml:clf-pkl:1",
        "azureml:clf:2",
    }
    mill.cli("model", "download", "--name", "clf-pkl", "-p", str(tmp_path / "dl"))
    with (tmp_path / "dl/clf-pkl/model.pkl").open("rb") as f:
        import pandas as pd

        assert list(pickle.load(f).predict(pd.DataFrame({"a": [1.0], "b": [0.0]}))) == [1]
    missing_output = mill.cli(
        "model",
        "create",
        "--name",
        "x",
        "--path",
        f"azureml://jobs/{job}/outputs/nope/paths/m",
        check=False,
    )
    assert missing_output.returncode == 2 and "has no output 'nope'" in missing_output.stderr


SCORE = """\
import json, os, sys
sys.path.insert(0, os.getcwd())
import score
score.init()
print(json.dumps(score.run(open(sys.argv[1]).read())))
"""


def test_package_writes_a_folder_whose_score_script_serves_the_model(
    mill: MillHome, tmp_path: Path
) -> None:
    import json
    import subprocess
    import sys

    import yaml

    _mlflow_folder(tmp_path / "clf")
    mill.cli(
        "model",
        "create",
        "--name",
        "clf",
        "--type",
        "mlflow_model",
        "--path",
        str(tmp_path / "clf"),
    )
    mill.cli("model", "package", "--name", "clf", "--version", "1", "-o", str(tmp_path / "pkg"))
    folder = tmp_path / "pkg" / "clf-1"
    assert (folder / "model" / "clf" / "MLmodel").is_file()
    deployment = yaml.safe_load((folder / "deployment.yml").read_text())
    assert deployment["model"]["path"] == "./model/clf"
    assert deployment["code_configuration"]["scoring_script"] == "score.py"
    assert (folder / "environment" / "conda.yaml").is_file()
    (folder / "run_score.py").write_text(SCORE)
    request = folder / "sample-request.json"
    assert request.is_file()
    answer = subprocess.run(
        [sys.executable, "run_score.py", str(request)],
        cwd=folder,
        env={**__import__("os").environ, "AZUREML_MODEL_DIR": str(folder / "model")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert answer.returncode == 0, answer.stderr
    assert json.loads(answer.stdout.strip().splitlines()[-1]) in ([0], [1])

    weights = tmp_path / "w.bin"
    weights.write_bytes(b"x")
    mill.cli("model", "create", "--name", "opaque", "--path", str(weights))
    refused = mill.cli(
        "model",
        "package",
        "--name",
        "opaque",
        "--version",
        "1",
        "-o",
        str(tmp_path / "p2"),
        check=False,
    )
    assert refused.returncode == 1 and "no scoring script" in refused.stderr
