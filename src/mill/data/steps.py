"""The transformations after the read, each a generator over per-file frames.

Each takes ``(spec, index, step, chunks, pd)``: the table (to locate problems at the
step's line), the step's position and model, the frames so far and the pandas module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from mill.errors import SpecError
from mill.specs import mltable_steps as spec_types
from mill.specs.mltable import MLTableSpec

from .readers import Chunk

__all__ = ["STEPS"]


def _take(
    spec: MLTableSpec, index: int, step: Any, chunks: Iterator[Chunk], pd: Any
) -> Iterator[Chunk]:
    remaining = step.count
    for chunk in chunks:
        if remaining <= 0:
            yield Chunk(chunk.path, chunk.frame.iloc[:0])  # keep the columns, stop reading
            return
        head = chunk.frame.iloc[:remaining]
        remaining -= len(head)
        yield Chunk(chunk.path, head)
        if remaining <= 0:
            return


def _skip(
    spec: MLTableSpec, index: int, step: Any, chunks: Iterator[Chunk], pd: Any
) -> Iterator[Chunk]:
    remaining = step.count
    for chunk in chunks:
        dropped = min(remaining, len(chunk.frame))
        remaining -= dropped
        yield Chunk(chunk.path, chunk.frame.iloc[dropped:])


def _sample(
    spec: MLTableSpec, index: int, step: Any, chunks: Iterator[Chunk], pd: Any
) -> Iterator[Chunk]:
    import numpy  # installed with pandas

    rng = numpy.random.default_rng(step.seed)
    for chunk in chunks:
        yield Chunk(chunk.path, chunk.frame[rng.random(len(chunk.frame)) < step.probability])


def _columns(
    spec: MLTableSpec, index: int, step: Any, chunks: Iterator[Chunk], pd: Any
) -> Iterator[Chunk]:
    keep = isinstance(step, spec_types.KeepColumns)
    for chunk in chunks:
        missing = [c for c in step.columns if c not in chunk.frame.columns]
        if missing:
            raise _column_error(spec, index, step.name, missing, chunk)
        frame = chunk.frame[list(step.columns)] if keep else chunk.frame.drop(columns=step.columns)
        yield Chunk(chunk.path, frame)


def _convert(
    spec: MLTableSpec, index: int, step: Any, chunks: Iterator[Chunk], pd: Any
) -> Iterator[Chunk]:
    from .conversions import ConversionError, convert

    for chunk in chunks:
        frame = chunk.frame.copy()
        for number, conversion in enumerate(step.conversions):
            missing = [c for c in conversion.columns if c not in frame.columns]
            if missing:
                raise _column_error(spec, index, step.name, missing, chunk, number)
            for column in conversion.columns:
                try:
                    frame[column] = convert(frame[column], conversion.column_type, pd)
                except ConversionError as exc:
                    where = ("transformations", index, step.name, number, "column_type")
                    message = f"column {column!r} of {chunk.path}: {exc}"
                    raise SpecError([spec.issue(message, where)]) from None
        yield Chunk(chunk.path, frame)


def _partitions(
    spec: MLTableSpec, index: int, step: Any, chunks: Iterator[Chunk], pd: Any
) -> Iterator[Chunk]:
    from .partitions import PartitionFormat

    try:
        parser = PartitionFormat(step.partition_format)
    except ValueError as exc:
        where = ("transformations", index, step.name)
        raise SpecError([spec.issue(str(exc), where, value=step.partition_format)]) from None
    for chunk in chunks:
        frame = chunk.frame.copy()
        for name, value in parser.values(chunk.path).items():
            frame[name] = value
        yield Chunk(chunk.path, frame)


def _column_error(
    spec: MLTableSpec,
    index: int,
    name: str,
    missing: list[str],
    chunk: Chunk,
    number: int | None = None,
) -> SpecError:
    where: tuple[str | int, ...] = ("transformations", index, name)
    if number is not None:
        where = (*where, number, "columns")
    have = ", ".join(str(c) for c in chunk.frame.columns)
    noun = "column" if len(missing) == 1 else "columns"
    message = f"no {noun} {', '.join(map(repr, missing))} in {chunk.path}"
    return SpecError([spec.issue(message, where, allowed=f"one of its columns: {have}")])


STEPS: dict[type, Callable[..., Iterator[Chunk]]] = {
    spec_types.Take: _take,
    spec_types.Skip: _skip,
    spec_types.TakeRandomSample: _sample,
    spec_types.DropColumns: _columns,
    spec_types.KeepColumns: _columns,
    spec_types.ConvertColumnTypes: _convert,
    spec_types.ExtractPartitionFormat: _partitions,
}
