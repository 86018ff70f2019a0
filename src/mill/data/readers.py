"""The read transformations: one file at a time -> one pandas frame per file."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mill.errors import NotSupportedError, SpecError
from mill.specs.mltable import MLTableSpec
from mill.specs.mltable_steps import ReadDelimited, ReadJsonLines, ReadParquet

if TYPE_CHECKING:
    from .mltable import SourceFile

__all__ = ["PATH_COLUMN", "Chunk", "read_files"]

# Azure ML's name for the column include_path_column adds.
PATH_COLUMN = "Path"


@dataclass(frozen=True)
class Chunk:
    """The rows read from one file so far, and that file's path as the Path column shows it."""

    path: str
    frame: Any


def read_files(
    spec: MLTableSpec, read: Any, files: Sequence[SourceFile], pd: Any
) -> Iterator[Chunk]:
    """Yield one frame per file, read lazily so a later ``take`` can stop early."""
    where = ("transformations", 0, read.name)
    names: list[str] | None = None  # the first file's header, for the headers that share it
    for number, file in enumerate(files):
        try:
            if isinstance(read, ReadDelimited):
                frame = _delimited(read, file, pd, number, names)
                if names is None:
                    names = [str(c) for c in frame.columns]
            elif isinstance(read, ReadParquet):
                frame = _parquet(file)
            elif isinstance(read, ReadJsonLines):
                frame = _json_lines(read, file, pd)
            else:  # read_delta_lake is refused before reading starts
                raise NotSupportedError(f"{read.name} is not supported yet")
        except UnicodeDecodeError as exc:
            encoding = getattr(read, "encoding", "utf8")
            message = f"{file.shown} is not {encoding} text (byte {exc.start} cannot be decoded)"
            raise SpecError([spec.issue(message, (*where, "encoding"))]) from None
        except (ValueError, OSError) as exc:  # pandas' ParserError is a ValueError
            message = f"cannot read {file.shown}: {exc}"
            raise SpecError([spec.issue(message, where)]) from None
        if getattr(read, "include_path_column", False):
            frame.insert(0, PATH_COLUMN, file.shown)
        yield Chunk(file.shown, frame)


def _delimited(
    read: ReadDelimited, file: SourceFile, pd: Any, number: int, names: list[str] | None
) -> Any:
    options: dict[str, Any] = {
        "sep": read.delimiter,
        "encoding": read.codec,
        # Only an empty field is missing: "NA" or "null" in a text column stay text.
        "keep_default_na": False,
        "na_values": [""],
        "dtype": None if read.infer_column_types else str,
        "engine": "python" if len(read.delimiter) > 1 else "c",
    }
    header = read.header
    no_header_row = header == "no_header" or (header == "from_first_file" and number > 0)
    options["header"] = None if no_header_row else 0
    if header in ("from_first_file", "all_files_same_headers") and number > 0:
        options["names"] = names  # with header=0 (same headers) it replaces the file's own
    with file.fs.open(file.path, "rb") as raw:
        frame = pd.read_csv(raw, **options)
    if header == "no_header":
        frame.columns = [f"Column{i + 1}" for i in range(len(frame.columns))]
    if read.empty_as_string:
        for column in frame.columns:
            if pd.api.types.is_string_dtype(frame[column]) or frame[column].dtype == object:
                frame[column] = frame[column].fillna("")
    return frame


def _parquet(file: SourceFile) -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise NotSupportedError(
            "reading parquet files needs pyarrow, which is not installed",
            hint="pip install pyarrow",
        ) from None
    with file.fs.open(file.path, "rb") as raw:
        return pq.read_table(raw).to_pandas()


def _json_lines(read: ReadJsonLines, file: SourceFile, pd: Any) -> Any:
    with file.fs.open(file.path, "rb") as raw:
        text = io.TextIOWrapper(raw, encoding=read.codec)
        records = []
        for line_number, line in enumerate(text, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                record, reason = None, f"not JSON ({exc.msg})"
            else:
                reason = "not a JSON object"
            if isinstance(record, dict):
                records.append(record)
            elif read.invalid_lines == "error":
                hint = "set invalid_lines: drop to skip such lines"
                raise ValueError(f"line {line_number} is {reason}; {hint}")
    return pd.DataFrame.from_records(records)
