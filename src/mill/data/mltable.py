"""An ``MLTable`` folder -> its files -> a pandas DataFrame (yaml-reference §13).

The folder may be local or any fsspec URL (``s3://``, ``abfs://`` with ``storage_options``);
paths inside the ``MLTable`` file start at its folder unless absolute or URLs. Files are
read one at a time and each transformation works on that stream of per-file frames, so
``take`` stops reading as soon as it has its rows; only the result is held at the end.
"""

from __future__ import annotations

import importlib
import os
import posixpath
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mill.errors import MillError, NotFoundError, NotSupportedError, SpecError
from mill.specs import mltable_steps as spec_types
from mill.specs.mltable import MLTABLE_FILE, MLTableSpec, load_mltable_spec, parse_mltable_text

from .readers import Chunk, read_files
from .steps import STEPS

if TYPE_CHECKING:
    import pandas

__all__ = ["load_mltable", "validate_mltable"]

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_NOT_LOADABLE = (
    "it has no read transformation ({reads}), so it is a list of files (usable as a "
    "uri_folder-style input) but not a table; add one as the first transformation to load it"
)


@dataclass(frozen=True)
class SourceFile:
    """One data file: its filesystem, its path there, and how the Path column shows it."""

    fs: Any
    path: str
    shown: str


@dataclass(frozen=True)
class _Table:
    spec: MLTableSpec
    fs: Any
    root: str  # the MLTable's folder on ``fs``
    shown: str  # the folder as the caller named it
    storage_options: dict[str, Any]


def load_mltable(
    path: str | Path, *, storage_options: dict[str, Any] | None = None
) -> pandas.DataFrame:
    """Load the table an ``MLTable`` file describes into a pandas DataFrame.

    ``path`` is a folder holding an ``MLTable`` file, that file itself, or an fsspec URL of
    such a folder. Raises :class:`~mill.errors.SpecError` (file, line, field) for a wrong
    file or a missing data path, :class:`~mill.errors.NotFoundError` when there is no
    ``MLTable`` file, and :class:`~mill.errors.NotSupportedError` for what Mill cannot
    load (``filter``, ``read_delta_lake``, a table without a read transformation).
    """
    pd = _import("pandas")
    table = _open(path, storage_options)
    spec = table.spec
    read = spec.read
    if read is None:
        reads = ", ".join(spec_types.READ_TRANSFORMATIONS)
        raise NotSupportedError(
            f"{spec.file}: cannot load as a table: {_NOT_LOADABLE}".format(reads=reads)
        )
    _refuse_unsupported(spec)
    files = [f for _, found in _resolve_paths(table) for f in found]
    chunks: Iterator[Chunk] = read_files(spec, read, files, pd)
    for index, step in enumerate(spec.transformations[1:], start=1):
        chunks = STEPS[type(step)](spec, index, step, chunks, pd)
    frames = [chunk.frame for chunk in chunks]
    if not frames:
        return pd.DataFrame()
    if len(frames) == 1:
        return frames[0].reset_index(drop=True)
    return pd.concat(frames, ignore_index=True)


def validate_mltable(
    path: str | Path, *, storage_options: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Check an ``MLTable`` folder without reading its data; return a summary.

    The summary has ``file``, ``paths`` (each with its ``kind``, ``value`` and ``files``
    found), ``file_count``, ``transformations`` (names in order), ``read`` (the read
    transformation or ``None``), ``loadable`` and, when not, ``reason``. Raises
    :class:`~mill.errors.SpecError` (file and line) when the file is wrong or a path it
    names is missing, :class:`~mill.errors.NotFoundError` when there is no ``MLTable``.
    """
    table = _open(path, storage_options)
    spec = table.spec
    resolved = _resolve_paths(table)
    summary: dict[str, Any] = {
        "file": spec.file,
        "paths": [
            {"kind": entry.kind, "value": entry.value, "files": len(found)}
            for entry, found in resolved
        ],
        "file_count": len({(id(f.fs), f.path) for _, found in resolved for f in found}),
        "transformations": [step.name for step in spec.transformations],
        "read": spec.read.name if spec.read is not None else None,
        "loadable": True,
    }
    try:
        if spec.read is None:
            reads = ", ".join(spec_types.READ_TRANSFORMATIONS)
            raise NotSupportedError(_NOT_LOADABLE.format(reads=reads))
        _refuse_unsupported(spec)
    except NotSupportedError as exc:
        summary["loadable"] = False
        summary["reason"] = exc.message
    return summary


# -- opening the table -------------------------------------------------------------------


def _open(path: str | Path, storage_options: dict[str, Any] | None) -> _Table:
    options = dict(storage_options or {})
    text = os.fspath(path)
    if _URL.match(text) and not text.startswith("file://"):
        return _open_url(text, options)
    local = Path(text.removeprefix("file://"))
    if local.is_dir():
        file = local / MLTABLE_FILE
        if not file.is_file():
            raise NotFoundError(
                f"no {MLTABLE_FILE} file in {text}",
                hint="an mltable folder holds a file named MLTable (no extension)",
            )
    elif local.is_file():
        file = local
    else:
        raise NotFoundError(f"no such MLTable folder or file: {text}")
    fs = _filesystem("file", options)
    root = os.path.abspath(file.parent)
    return _Table(load_mltable_spec(file), fs, root, str(file.parent), options)


def _open_url(url: str, options: dict[str, Any]) -> _Table:
    fs, root = _url_to_fs(url, options)
    try:
        if fs.isfile(root):
            file, root = root, posixpath.dirname(root.rstrip("/"))
        else:
            root = root.rstrip("/")
            file = f"{root}/{MLTABLE_FILE}"
        raw = fs.cat_file(file)
    except FileNotFoundError:
        raise NotFoundError(f"no {MLTABLE_FILE} file at {url}") from None
    except OSError as exc:
        raise MillError(f"cannot read the MLTable at {url}: {exc}") from None
    shown = url if url.rstrip("/").endswith(MLTABLE_FILE) else f"{url.rstrip('/')}/{MLTABLE_FILE}"
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SpecError.one("not UTF-8 text", file=shown) from None
    return _Table(parse_mltable_text(text, shown), fs, root, url, options)


def _url_to_fs(url: str, options: dict[str, Any]) -> tuple[Any, str]:
    if url.startswith("azureml://"):
        raise NotSupportedError(
            f"cannot open {url} directly",
            hint="give the datastore's own URL (s3://..., abfs://...) or a local folder",
        )
    fsspec = _import("fsspec")
    try:
        fs, found = fsspec.core.url_to_fs(url, **options)
    except (ImportError, ValueError) as exc:
        raise NotSupportedError(f"cannot open {url}: {exc}") from None
    return fs, str(found)


def _filesystem(protocol: str, options: dict[str, Any]) -> Any:
    return _import("fsspec").filesystem(protocol, **({} if protocol == "file" else options))


# -- finding the files -------------------------------------------------------------------


def _resolve_paths(table: _Table) -> list[tuple[Any, list[SourceFile]]]:
    """Each ``paths`` entry with the files it names, in a stable (sorted) order."""
    spec = table.spec
    seen: set[tuple[int, str]] = set()
    resolved: list[tuple[Any, list[SourceFile]]] = []
    for index, entry in enumerate(spec.paths):
        where = ("paths", index, entry.kind)
        fs, full = _locate(table, entry.value)
        try:
            found = _files_of(table, fs, full, entry.kind)
        except FileNotFoundError as exc:
            raise SpecError([spec.issue(str(exc), where, value=entry.value)]) from None
        except OSError as exc:
            message = f"cannot list {full}: {exc}"
            raise SpecError([spec.issue(message, where, value=entry.value)]) from None
        if not found and entry.kind == "pattern":
            message = "the pattern matches no files"
            raise SpecError([spec.issue(message, where, value=entry.value)])
        files = []
        for path in found:
            if (id(fs), path) not in seen:
                seen.add((id(fs), path))
                files.append(SourceFile(fs, path, _shown(table, fs, path)))
        resolved.append((entry, files))
    return resolved


def _locate(table: _Table, value: str) -> tuple[Any, str]:
    text = value.strip()
    if _URL.match(text) and not text.startswith("file://"):
        return _url_to_fs(text, table.storage_options)
    text = text.removeprefix("file://")
    if os.path.isabs(text):
        return _filesystem("file", {}), os.path.normpath(text)
    joined = posixpath.normpath(posixpath.join(table.root, text.replace("\\", "/")))
    return table.fs, joined


def _files_of(table: _Table, fs: Any, full: str, kind: str) -> list[str]:
    if kind == "pattern":
        matches = fs.glob(full, detail=True)
        return sorted(p for p, info in matches.items() if info.get("type") == "file")
    if not fs.exists(full):
        raise FileNotFoundError(f"no such {kind}: {full}")
    if kind == "file":
        if fs.isdir(full):
            raise FileNotFoundError(f"{full} is a folder; name it with folder: instead of file:")
        return [full]
    if not fs.isdir(full):
        raise FileNotFoundError(f"{full} is a file; name it with file: instead of folder:")
    own = posixpath.join(table.root, MLTABLE_FILE)
    return sorted(
        p
        for p in fs.find(full)
        if p != own and not any(part.startswith(".") for part in _relative(p, full).split("/"))
    )


def _relative(path: str, root: str) -> str:
    return path[len(root) :].lstrip("/") if path.startswith(root.rstrip("/") + "/") else path


def _shown(table: _Table, fs: Any, path: str) -> str:
    """The Path column's value: relative to the table's folder when below it."""
    if fs is table.fs and path.startswith(table.root.rstrip("/") + "/"):
        return _relative(path, table.root)
    unstrip: Callable[[str], str] | None = getattr(fs, "unstrip_protocol", None)
    return unstrip(path) if unstrip is not None and "file" not in fs.protocol else path


# -- transformations after the read ------------------------------------------------------


def _refuse_unsupported(spec: MLTableSpec) -> None:
    for index, step in enumerate(spec.transformations):
        reason = _UNSUPPORTED.get(step.name)
        if reason:
            issue = spec.issue(reason, ("transformations", index, step.name))
            raise NotSupportedError(f"{issue.render()}")
        if isinstance(step, spec_types.ConvertColumnTypes):
            for number, conversion in enumerate(step.conversions):
                if conversion.column_type.kind == "stream_info":
                    where = ("transformations", index, step.name, number, "column_type")
                    message = "conversion to stream_info is not supported"
                    raise NotSupportedError(spec.issue(message, where).render())


_UNSUPPORTED = {
    "filter": "filter is not supported yet: load the table and filter the DataFrame "
    "(df.query(...)) instead",
    "read_delta_lake": "read_delta_lake is not supported yet: read the Delta table with "
    "the deltalake package",
}


def _import(name: str) -> Any:
    """Import an optional dependency, saying how to install it when it is missing."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise NotSupportedError(
            f"loading an MLTable needs {name}, which is not installed",
            hint=f"pip install {name} (or pip install 'mill[examples]')",
        ) from None
