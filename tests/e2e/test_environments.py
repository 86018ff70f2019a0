"""Environments end to end: built with uv, cached by key, used by jobs; assets; bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

from tests.e2e.harness import EXAMPLES, MillHome

CONDA = """\
name: extra-packages
channels: [conda-forge]
dependencies:
  - python=3.11
  - pip
  - pip:
      - tomli-w==1.0.0
"""
IMPORT_TOMLI_W = "python -c \"import tomli_w, sys; print('tomli_w', tomli_w.dumps(dict(a=1)).strip(), sys.prefix)\""


def _write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def test_a_conda_file_job_runs_in_its_built_environment_and_reuses_it(
    mill: MillHome, tmp_path: Path
) -> None:
    folder = _write(
        tmp_path / "conda-job",
        {
            "conda.yml": CONDA,
            "job.yml": f"command: {IMPORT_TOMLI_W}\n"
            "environment:\n  image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest\n"
            "  conda_file: conda.yml\n",
        },
    )
    host = subprocess.run([sys.executable, "-c", "import tomli_w"], capture_output=True)
    assert host.returncode != 0, "the test needs a package the host does not have"
    first = mill.cli("job", "create", "--file", str(folder / "job.yml"), "--stream")
    assert "tomli_w a = 1" in first.stdout
    assert "azureml-logs/20_image_build_log.txt" in first.stdout  # the build was streamed
    name = first.stdout.split("RunId: ", 1)[1].split()[0]
    job = mill.json("job", "show", "--name", name)
    assert job["environment_key"] and len(job["environment_key"]) == 64
    assert job["environment_status"] in ("built", "cache hit")
    assert job["environment_python"].startswith(str(MillHome.shared_envs))
    second = mill.cli(
        "job", "create", "--file", str(folder / "job.yml"), "--query", "name", "-o", "tsv"
    ).stdout.strip()
    again = mill.wait_job(second)
    assert again["status"] == "Completed"
    assert again["environment_status"] == "cache hit"
    assert again["environment_key"] == job["environment_key"]


def test_the_curated_sklearn_environment(shared_mill: MillHome) -> None:
    name = shared_mill.submit(
        "command: python -c \"import sklearn, pandas; print('versions', sklearn.__version__, pandas.__version__)\"\n"
        "environment: azureml://registries/azureml/environments/sklearn-1.5/labels/latest\n",
        folder="curated",
    )
    job = shared_mill.wait_job(name, timeout=600)
    assert job["status"] == "Completed", job
    log = shared_mill.cli("job", "stream", "--name", name).stdout
    line = next(x for x in log.splitlines() if x.startswith("versions"))
    _, sklearn_version, pandas_version = line.split()
    assert sklearn_version.startswith("1.5.") and pandas_version.startswith("1.5.")
    same = shared_mill.submit(
        "command: python -c 'import sklearn'\nenvironment: azureml:AzureML-sklearn-1.5@latest\n",
        folder="curated-again",
    )
    assert shared_mill.wait_job(same, timeout=120)["environment_key"] == job["environment_key"]


def test_environment_assets_versions_and_job_references(mill: MillHome, tmp_path: Path) -> None:
    folder = _write(
        tmp_path / "envdef",
        {
            "conda.yml": CONDA,
            "env.yml": "name: tools\nimage: python:3.11\nconda_file: conda.yml\ndescription: first\n",
        },
    )
    first = mill.json("environment", "create", "--file", str(folder / "env.yml"))
    assert (first["name"], first["version"]) == ("tools", "1")
    assert first["conda_file"]["dependencies"][-1] == {"pip": ["tomli-w==1.0.0"]}
    assert len(first["key"]) == 64
    second = mill.json(
        "environment", "create", "--file", str(folder / "env.yml"), "--set", "description=second"
    )
    assert second["version"] == "2"
    assert (
        second["key"] == first["key"]
    )  # same content, same key: the description is not part of it
    clash = mill.cli(
        "environment", "create", "--file", str(folder / "env.yml"), "--version", "1", check=False
    )
    assert clash.returncode == 1 and "immutable" in clash.stderr
    latest = mill.json("environment", "show", "--name", "tools", "--label", "latest")
    assert latest["version"] == "2" and latest["description"] == "second"
    listed = mill.cli("environment", "list").stdout
    assert "tools" in listed and listed.splitlines()[0].split()[:2] == ["Name", "Version"]
    versions = mill.json("environment", "list", "--name", "tools")
    assert [v["version"] for v in versions] == ["2", "1"]
    updated = mill.json(
        "environment", "update", "--name", "tools", "--version", "1", "--tags", "team=ml"
    )
    assert updated["tags"] == {"team": "ml"}
    for ref in ("azureml:tools:1", "azureml:tools@latest"):
        name = mill.submit(
            f"command: {IMPORT_TOMLI_W}\nenvironment: {ref}\n", folder="uses-" + ref[-1]
        )
        job = mill.wait_job(name, timeout=300)
        assert job["status"] == "Completed", job
        assert job["environment_key"] == first["key"]
    mill.cli("environment", "archive", "--name", "tools", "--version", "2")
    assert (
        mill.json("environment", "show", "--name", "tools", "--label", "latest")["version"] == "1"
    )


def test_curated_registry_and_cache_listing(shared_mill: MillHome) -> None:
    curated = shared_mill.json("environment", "list", "--registry", "azureml")
    names = {c["name"] for c in curated}
    assert {
        "sklearn-1.5",
        "lightgbm-3.3",
        "tensorflow-2.16-cuda12",
        "acpt-pytorch-2.8-cuda12.6",
    } <= names
    table = shared_mill.cli("environment", "list", "--registry", "azureml").stdout
    assert "sklearn-1.5" in table


def test_four_jobs_with_one_new_environment_build_it_once(tmp_path: Path) -> None:
    home = MillHome(tmp_path / "home")
    home.env["MILL_ENVS_DIR"] = str(tmp_path / "own-envs")  # an empty cache: the build is new
    home.start()
    folder = _write(
        tmp_path / "four",
        {
            "requirements.txt": "tomli-w==1.0.0\n",
            "Dockerfile": "FROM python:3.11-slim\nCOPY requirements.txt .\nRUN pip install -r requirements.txt\n",
            "job.yml": f"command: {IMPORT_TOMLI_W}\nenvironment:\n  build:\n    path: .\n",
        },
    )
    names: list[str] = []

    def submit() -> None:
        names.append(
            home.cli(
                "job", "create", "--file", str(folder / "job.yml"), "--query", "name", "-o", "tsv"
            ).stdout.strip()
        )

    try:
        threads = [threading.Thread(target=submit) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        jobs = [home.wait_job(n, timeout=300) for n in names]
        assert all(j["status"] == "Completed" for j in jobs), jobs
        assert len({j["environment_key"] for j in jobs}) == 1
        assert sorted(j["environment_status"] for j in jobs) == [
            "built",
            "cache hit",
            "cache hit",
            "cache hit",
        ]
        assert len(home.json("environment", "list", "--cached")) == 1
    finally:
        home.stop()


def test_a_build_that_fails_fails_the_job_with_the_installer_error(mill: MillHome) -> None:
    name = mill.submit(
        "command: echo never\nenvironment:\n  image: python:3.11\n"
        "  conda_file:\n    dependencies: [python=3.11, pip, {pip: [mill-no-such-package-anywhere==1.0]}]\n",
        folder="failing-build",
    )
    job = mill.wait_job(name, timeout=300)
    assert job["status"] == "Failed"
    assert "environment build failed" in job["error"]["message"]
    assert "mill-no-such-package-anywhere" in job["error"]["message"]
    streamed = mill.cli("job", "stream", "--name", name, check=False)
    assert streamed.returncode == 1 and "never" not in streamed.stdout
    assert "mill-no-such-package-anywhere" in streamed.stdout  # the build log, streamed


BAD = [
    (
        "environment:\n  conda_file: conda.yml\n",
        {"conda.yml": "dependencies: not-a-list\n"},
        ["conda.yml", "dependencies"],
    ),
    (
        "environment:\n  conda_file: conda.yml\n",
        {"conda.yml": "dependencies: [python=3.11, cudatoolkit=11.8]\n"},
        ["cudatoolkit"],
    ),
    (
        "environment:\n  conda_file: conda.yml\n",
        {"conda.yml": "dependencies: [python=3.11, pip, {pip: [scikit-learn==1.1.2]}]\n"},
        ["scikit-learn==1.1.2", "1.1.3"],
    ),
    ("environment:\n  build:\n    path: nowhere\n", {}, ["nowhere"]),
    ("environment: azureml:AzureML-no-such-curated@latest\n", {}, ["not available in Mill"]),
    (
        "environment: azureml://registries/azureml/environments/model-evaluation/labels/latest\n",
        {},
        ["model-evaluation", "not available"],
    ),
    ("environment: azureml:never-registered:3\n", {}, ["unknown environment", "never-registered"]),
    (
        "environment:\n  conda_file: conda.yml\n",
        {"conda.yml": "dependencies: [python=3.11\n"},
        ["conda.yml", "YAML"],
    ),
]


def test_bad_environments_are_refused_before_anything_runs(
    shared_mill: MillHome, tmp_path: Path
) -> None:
    for i, (env_yaml, files, texts) in enumerate(BAD):
        folder = _write(
            tmp_path / f"bad{i}", {**files, "job.yml": "command: echo ran\n" + env_yaml}
        )
        result = shared_mill.cli("job", "create", "--file", str(folder / "job.yml"), check=False)
        assert result.returncode == 2, (env_yaml, result.stderr)
        assert "Traceback" not in result.stderr
        for text in texts:
            assert text in result.stderr, (text, result.stderr)


def test_prune_frees_the_cache(tmp_path: Path) -> None:
    home = MillHome(tmp_path / "home")
    home.env["MILL_ENVS_DIR"] = str(tmp_path / "own-envs")  # not the shared cache
    home.start()
    try:
        name = home.submit("command: 'true'\nenvironment:\n  image: python:3.11\n", folder="p")
        assert home.wait_job(name, timeout=120)["status"] == "Completed"
        cached = home.json("environment", "list", "--cached")
        assert len(cached) == 1 and cached[0]["size_bytes"] > 0
        kept = home.json("environment", "prune", "--keep", "1")
        assert kept["removed"] == []
        removed = home.json("environment", "prune", "--older-than", "0s")
        assert len(removed["removed"]) == 1
        assert home.json("environment", "list", "--cached") == []
        bad = home.cli("environment", "prune", "--older-than", "soon", check=False)
        assert bad.returncode == 2 and "soon" in bad.stderr
    finally:
        home.stop()


def test_environment_show_for_a_job_example(shared_mill: MillHome) -> None:
    result = shared_mill.json("job", "validate", "--file", str(EXAMPLES / "sklearn-iris/job.yml"))
    assert len(result["environment_key"]) == 64
    assert json.dumps(result)  # serialisable as az prints it


def test_environment_build_now_with_either_builder(shared_mill: MillHome, tmp_path: Path) -> None:
    folder = _write(tmp_path / "b", {"env.yml": "name: prebuilt\nimage: python:3.11\n"})
    created = shared_mill.json("environment", "create", "--file", str(folder / "env.yml"))
    built = shared_mill.json("environment", "build", "--name", "prebuilt")
    assert built["key"] == created["key"] and built["python"].endswith("/bin/python")
    again = shared_mill.json(
        "environment", "build", "--name", "prebuilt", "--version", created["version"]
    )
    assert again["cache_hit"] is True
    docker = shared_mill.cli(
        "environment", "build", "--name", "prebuilt", "--builder", "docker", check=False
    )
    if docker.returncode == 0:  # a container engine answers on this machine
        assert json.loads(docker.stdout)["image"].startswith("mill-env:")
    else:
        assert docker.returncode == 1 and "needs a container engine" in docker.stderr


def test_user_managed_interpreter_runs_the_job_as_is(shared_mill: MillHome, tmp_path: Path) -> None:
    name = shared_mill.submit(
        "command: python -c 'import sys; print(sys.executable)'\n"
        "environment:\n  python:\n    user_managed_dependencies: true\n"
        f"    interpreter_path: {sys.executable}\n",
        folder="user-managed",
    )
    job = shared_mill.wait_job(name)
    assert job["status"] == "Completed", job
    assert job["environment_status"] == "user-managed interpreter"
    missing = _write(
        tmp_path / "um",
        {
            "job.yml": "command: 'true'\nenvironment:\n  python:\n    user_managed_dependencies: true\n    interpreter_path: /no/such/python\n"
        },
    )
    refused = shared_mill.cli("job", "create", "--file", str(missing / "job.yml"), check=False)
    assert refused.returncode == 2 and "/no/such/python" in refused.stderr


def test_environment_validate(shared_mill: MillHome, tmp_path: Path) -> None:
    good = _write(
        tmp_path / "v",
        {"conda.yml": CONDA, "env.yml": "name: v\nimage: python:3.11\nconda_file: conda.yml\n"},
    )
    assert (
        "valid"
        in shared_mill.cli("environment", "validate", "--file", str(good / "env.yml")).stderr
    )
    (good / "bad.yml").write_text("name: v\nimage: python:3.11\nconda_fiel: conda.yml\n")
    bad = shared_mill.cli("environment", "validate", "--file", str(good / "bad.yml"), check=False)
    assert bad.returncode == 2 and "bad.yml:3" in bad.stderr and "conda_fiel" in bad.stderr
