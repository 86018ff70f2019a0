"""The Dockerfile subset Mill reproduces, and what it only notes."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mill.envs import EnvironmentDefinition, resolve
from mill.envs.dockerfile import read_dockerfile
from mill.errors import SpecError


def _context(tmp_path: Path, dockerfile: str, **files: str) -> Path:
    (tmp_path / "Dockerfile").write_text(textwrap.dedent(dockerfile))
    for name, text in files.items():
        path = tmp_path / name.replace("__", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return tmp_path


def test_pip_installs_in_every_spelling(tmp_path: Path) -> None:
    context = _context(
        tmp_path,
        """\
        # syntax=docker/dockerfile:1
        FROM python:3.11-slim
        RUN pip install --no-cache-dir six==1.16.0
        RUN python -m pip install -U "tomli==2.0.1" && \\
            pip3 install --extra-index-url https://example.org/simple packaging
        RUN python3 -m pip install --upgrade pip setuptools && pip install -q attrs
        RUN ["pip", "install", "iniconfig==2.0.0"]
        RUN PIP_NO_CACHE_DIR=1 pip install 'idna>=3'
        """,
    )
    parsed = read_dockerfile(context)
    assert parsed.image == "python:3.11-slim"
    assert parsed.python_version == "3.11"
    assert parsed.requirements == [
        "six==1.16.0",
        "tomli==2.0.1",
        "packaging",
        "setuptools",
        "attrs",
        "iniconfig==2.0.0",
        "idna>=3",
    ]
    assert parsed.pip_options == ["--extra-index-url=https://example.org/simple"]
    assert not any("not reproduced" in note for note in parsed.notes)


def test_requirements_file_copied_into_the_image(tmp_path: Path) -> None:
    context = _context(
        tmp_path,
        """\
        FROM library/python:3.10
        WORKDIR /app
        COPY requirements.txt .
        COPY deps/ /opt/deps/
        RUN pip install -r requirements.txt && pip install -r /opt/deps/more.txt
        """,
        **{
            "requirements.txt": "six==1.16.0  # pinned\n--find-links /wheels\n\ntomli\n",
            "deps__more.txt": "-r nested.txt\npackaging\n",
            "deps__nested.txt": "attrs\n",
        },
    )
    parsed = read_dockerfile(context)
    assert parsed.python_version == "3.10"
    assert parsed.requirements == ["six==1.16.0", "tomli", "attrs", "packaging"]
    assert parsed.pip_options == ["--find-links=/wheels"]
    assert sorted(parsed.files_read) == ["deps/more.txt", "deps/nested.txt", "requirements.txt"]
    assert parsed.origins["tomli"] == "requirements.txt:4"


def test_whole_context_copy(tmp_path: Path) -> None:
    context = _context(
        tmp_path,
        "FROM python\nCOPY . /src\nRUN pip install -r /src/reqs/base.txt\n",
        **{"reqs__base.txt": "six\n"},
    )
    assert read_dockerfile(context).requirements == ["six"]


def test_other_lines_are_notes_not_errors(tmp_path: Path) -> None:
    context = _context(
        tmp_path,
        """\
        FROM mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest
        ARG VERSION=1
        ENV PYTHONUNBUFFERED=1
        LABEL maintainer=me
        USER root
        RUN apt-get update && apt-get install -y libgomp1 && pip install six
        RUN conda install -y numpy
        EXPOSE 5001
        HEALTHCHECK CMD curl -f http://localhost/
        CMD ["python", "score.py"]
        ENTRYPOINT ["/bin/bash"]
        RUN pip install .
        """,
    )
    parsed = read_dockerfile(context)
    assert parsed.requirements == ["six"]
    notes = "\n".join(parsed.notes)
    for expected in (
        "Dockerfile:2: ignored: ARG VERSION=1",
        "Dockerfile:3: ignored: ENV PYTHONUNBUFFERED=1",
        "Dockerfile:4: ignored: LABEL maintainer=me",
        "Dockerfile:5: ignored: USER root",
        "Dockerfile:6: not reproduced: RUN apt-get update && apt-get install -y libgomp1",
        "Dockerfile:7: not reproduced: RUN conda install -y numpy",
        "Dockerfile:8: ignored: EXPOSE 5001",
        "Dockerfile:10: ignored: CMD",
        "Dockerfile:11: ignored: ENTRYPOINT",
        "Dockerfile:12: not reproduced: installing the local path .",
        "OpenMPI",
    ):
        assert expected in notes


def test_multi_stage_keeps_the_last_stage(tmp_path: Path) -> None:
    context = _context(
        tmp_path,
        "FROM python:3.10 AS build\nRUN pip install torch\nFROM python:3.11\nRUN pip install six\n",
    )
    parsed = read_dockerfile(context)
    assert parsed.requirements == ["six"]
    assert parsed.python_version == "3.11"
    assert any("multi-stage" in note for note in parsed.notes)


def test_other_dockerfile_name(tmp_path: Path) -> None:
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker" / "Dockerfile.cpu").write_text("FROM python\nRUN pip install six\n")
    resolved = resolve(
        EnvironmentDefinition(build_context=tmp_path, dockerfile_path="docker/Dockerfile.cpu")
    )
    assert resolved.requirements == ["six"]
    assert resolved.source == {"dockerfile": "docker/Dockerfile.cpu", "image": "python"}
    assert resolved.context_digest is None


def test_missing_build_context(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as raised:
        resolve(EnvironmentDefinition(build_context=tmp_path / "nope"))
    assert raised.value.message.startswith("build.path: the build context folder does not exist")


def test_missing_dockerfile(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as raised:
        resolve(EnvironmentDefinition(build_context=tmp_path, dockerfile_path="Dockerfile.gpu"))
    assert raised.value.message.startswith("build.dockerfile_path: no Dockerfile.gpu in the build")


def test_requirements_file_not_copied(tmp_path: Path) -> None:
    context = _context(tmp_path, "FROM python\nRUN pip install -r /app/requirements.txt\n")
    with pytest.raises(SpecError) as raised:
        read_dockerfile(context)
    assert raised.value.message.startswith(
        "Dockerfile:2: pip install -r /app/requirements.txt: /app/requirements.txt is not copied"
    )


def test_bad_requirement_in_a_requirements_file(tmp_path: Path) -> None:
    context = _context(
        tmp_path,
        "FROM python\nCOPY requirements.txt /r.txt\nRUN pip install -r /r.txt\n",
        **{"requirements.txt": "six\nnumpy=1.2\n"},
    )
    with pytest.raises(SpecError) as raised:
        read_dockerfile(context)
    assert raised.value.message.startswith("requirements.txt:2: not a version specifier")


def test_unknown_pip_option_in_run(tmp_path: Path) -> None:
    context = _context(tmp_path, "FROM python\nRUN pip install --frobnicate six\n")
    with pytest.raises(SpecError) as raised:
        read_dockerfile(context)
    assert raised.value.message.startswith("Dockerfile:2: RUN pip install: a pip option")


def test_continuations_with_comments_and_blank_lines(tmp_path: Path) -> None:
    context = _context(
        tmp_path,
        """\
        FROM python
        RUN pip install \\
            # the first one
            six \\

            tomli
        """,
    )
    assert read_dockerfile(context).requirements == ["six", "tomli"]
