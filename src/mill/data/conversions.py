"""convert_column_types: one pandas column -> the type an MLTable asks for."""

from __future__ import annotations

from typing import Any

from mill.specs.mltable_steps import ColumnType

__all__ = ["ConversionError", "convert"]

_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})


class ConversionError(ValueError):
    """A value that cannot become the requested type (the caller adds where it is)."""


def convert(series: Any, column_type: ColumnType, pd: Any) -> Any:
    """``series`` as ``column_type``; missing values stay missing, bad values raise."""
    kind = column_type.kind
    if kind == "string":
        return series.astype(pd.StringDtype())
    if kind in ("int", "float"):
        return _number(series, kind, pd)
    if kind == "boolean":
        return _boolean(series, column_type, pd)
    if kind == "datetime":
        return _datetime(series, column_type, pd)
    raise ConversionError(f"conversion to {kind} is not supported")


def _number(series: Any, kind: str, pd: Any) -> Any:
    text = series.astype(str).str.strip() if _is_text(series, pd) else series
    numbers = pd.to_numeric(text, errors="coerce")
    _check(series, numbers, kind)
    if kind == "float":
        return numbers.astype("float64")
    fractional = numbers.notna() & (numbers % 1 != 0)
    if fractional.any():
        raise ConversionError(f"value {series[fractional].iloc[0]!r} is not a whole number")
    return numbers.astype("Int64")


def _boolean(series: Any, column_type: ColumnType, pd: Any) -> Any:
    if pd.api.types.is_bool_dtype(series):
        return series.astype("boolean")
    true_values = {v.lower() for v in column_type.true_values} or _TRUE
    false_values = {v.lower() for v in column_type.false_values} or _FALSE

    def one(value: Any) -> Any:
        if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
            return pd.NA
        text = str(value).strip().lower()
        if isinstance(value, float) and value.is_integer():
            text = str(int(value))  # 1.0 read from a numeric column
        if text in true_values:
            return True
        if text in false_values:
            return False
        if column_type.mismatch_as in ("true", "false"):
            return column_type.mismatch_as == "true"
        allowed = ", ".join(sorted(true_values | false_values))
        raise ConversionError(f"value {value!r} is not a boolean (expected one of {allowed})")

    return series.map(one).astype("boolean")


def _datetime(series: Any, column_type: ColumnType, pd: Any) -> Any:
    if pd.api.types.is_datetime64_any_dtype(series):
        return series
    text = series.astype(str).str.strip().where(series.notna())
    result = pd.Series(pd.NaT, index=series.index, dtype="datetime64[ns]")
    for fmt in column_type.formats:
        pending = result.isna() & text.notna()
        if not pending.any():
            break
        parsed = pd.to_datetime(text[pending], format=fmt, errors="coerce")
        result.loc[pending] = parsed
    _check(series, result, "a datetime in formats " + ", ".join(column_type.formats))
    return result


def _check(original: Any, converted: Any, kind: str) -> None:
    bad = original.notna() & converted.isna()
    if bad.any():
        raise ConversionError(f"value {original[bad].iloc[0]!r} cannot be converted to {kind}")


def _is_text(series: Any, pd: Any) -> bool:
    return bool(pd.api.types.is_string_dtype(series) or series.dtype == object)
