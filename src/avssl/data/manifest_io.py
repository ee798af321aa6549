"""Reading and writing manifests: CSV (always) and Parquet (when pyarrow is installed).

Loading parses each column in one vectorised numpy conversion, so 100k rows load in about a
second; a bad value is then located row by row to name the line and column in the error.
"""

from __future__ import annotations

import csv
import math
import os

import numpy as np

from avssl.data.manifest_schema import COLUMNS, OPTIONAL_COLUMNS
from avssl.data.packed_strings import PackedStrings
from avssl.errors import UsageError

_TRUE = {"1", "true", "True", "TRUE", "yes", "y"}
_FALSE = {"0", "false", "False", "FALSE", "no", "n", ""}
FORMATS = (".csv", ".parquet")


def manifest_format(path: str | os.PathLike) -> str:
    """'.csv' or '.parquet' from the file name; anything else is a UsageError naming the file."""
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext not in FORMATS:
        raise UsageError(f"{os.fspath(path)}: a manifest must end in .csv or .parquet")
    return ext


Columns = dict[str, "np.ndarray | PackedStrings"]


def save_columns(columns: Columns, path: str | os.PathLike) -> str:
    """Write a manifest's columns as CSV or Parquet (by extension); parent folders are created.
    Relative paths (this process's, so relative to the working folder) are written absolute: a
    manifest's relative paths are read relative to its own folder. Returns the path."""
    path = os.fspath(path)
    ext = manifest_format(path)
    columns = {**columns, "path": _resolve_paths(columns["path"], os.getcwd())}
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    if ext == ".parquet":
        _save_parquet(columns, tmp)
    else:
        _save_csv(columns, tmp)
    os.replace(tmp, path)  # a killed probe never leaves a half-written manifest under the real name
    return path


def load_columns(path: str | os.PathLike) -> Columns:
    """Read a manifest's columns; relative paths in it are taken relative to the manifest's folder."""
    path = os.fspath(path)
    ext = manifest_format(path)
    if not os.path.isfile(path):
        raise UsageError(f"{path}: manifest not found")
    raw = _read_parquet(path) if ext == ".parquet" else _read_csv(path)
    columns = _convert(raw, path)
    _check_rows(columns, path)
    columns["path"] = _resolve_paths(columns["path"], os.path.dirname(os.path.abspath(path)))
    return columns


# CSV --------------------------------------------------------------------------------------------
def _format_number(value: float | int | bool, dtype: object) -> str:
    if dtype == np.bool_:
        return "1" if value else "0"
    if np.issubdtype(dtype, np.floating):
        return "" if math.isnan(value) else repr(float(value))
    return str(int(value))


def _save_csv(columns: Columns, path: str) -> None:
    cells = []
    for name, dtype in COLUMNS.items():
        col = columns[name]
        if dtype == "str":
            cells.append(col.to_list())
        else:
            cells.append([_format_number(v, dtype) for v in col.tolist()])
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        writer.writerows(zip(*cells))


def _read_csv(path: str) -> dict[str, list[str]]:
    # utf-8-sig: a byte-order mark (spreadsheet exports) is not part of the first column's name
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        try:
            header = next(reader, None)
            if header is None:
                raise UsageError(f"{path}: manifest is empty (no header line)")
            header = [h.strip() for h in header]
            _check_columns(header, path)
            rows = list(reader)
        except csv.Error as err:  # a field over csv.field_size_limit(), a NUL byte, ...
            raise UsageError(f"{path}:{reader.line_num}: not a readable CSV line ({err})") from None
        except UnicodeDecodeError as err:
            raise UsageError(f"{path}: not UTF-8 text ({err})") from None
    width = len(header)
    for line, row in enumerate(rows, start=2):
        if len(row) != width:
            raise UsageError(f"{path}:{line}: {len(row)} fields, the header has {width}")
    values = list(zip(*rows)) if rows else [()] * width
    return {name: list(col) for name, col in zip(header, values)}


def _check_columns(header: list[str], path: str) -> None:
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise UsageError(f"{path}: column(s) {', '.join(repeated)} appear more than once in the header; "
                         f"keep one (a reader would silently take the last)")
    required = [name for name in COLUMNS if name not in OPTIONAL_COLUMNS]
    missing = [name for name in required if name not in header]
    if missing:
        raise UsageError(
            f"{path}: manifest is missing column(s) {', '.join(missing)} "
            f"(found: {', '.join(header) or 'none'}); write it with `avssl probe`"
        )


# Parquet ----------------------------------------------------------------------------------------
def _pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError as err:
        raise UsageError(
            "Parquet manifests need pyarrow: pip install 'avssl[parquet]' (or use a .csv name)"
        ) from err
    return pyarrow


def _save_parquet(columns: Columns, path: str) -> None:
    pa = _pyarrow()
    arrays = {}
    for name, dtype in COLUMNS.items():
        col = columns[name]
        arrays[name] = pa.array(col.to_list(), type=pa.string()) if dtype == "str" else pa.array(col)
    pa.parquet.write_table(pa.table(arrays), path)


def _read_parquet(path: str) -> dict[str, list | np.ndarray]:
    pa = _pyarrow()
    try:
        _check_columns(pa.parquet.read_schema(path).names, path)  # before a read that chokes on repeats
        table = pa.parquet.read_table(path)
    except pa.ArrowException as err:
        raise UsageError(f"{path}: not a readable Parquet file ({err})") from err
    raw: dict[str, list | np.ndarray] = {}
    for name in table.column_names:
        if name not in COLUMNS:
            continue
        col = table.column(name)
        raw[name] = col.to_pylist() if COLUMNS[name] == "str" else col.to_numpy()
    return raw


# conversion -------------------------------------------------------------------------------------
def _convert(raw: dict[str, list | np.ndarray], path: str) -> dict[str, np.ndarray | PackedStrings]:
    n = len(raw["path"])
    columns: dict[str, np.ndarray | PackedStrings] = {}
    for name, dtype in COLUMNS.items():
        values = raw.get(name)
        if dtype == "str":
            values = [""] * n if values is None else ["" if v is None else str(v) for v in values]
            columns[name] = PackedStrings.from_strings(values)
        elif isinstance(values, np.ndarray) and values.dtype != object:
            columns[name] = _from_numeric(values, name, dtype, path)
        else:
            columns[name] = _parse_numbers(list(values), name, dtype, path)
    return columns


def _from_numeric(values: np.ndarray, name: str, dtype: object, path: str) -> np.ndarray:
    """A typed (Parquet) column as `dtype`: a flag must be 0/1, an integer a whole finite number
    (a null reads as NaN); a cast would turn has_video=5 into true and NaN into a huge count."""
    if dtype == np.bool_ and values.dtype != np.bool_:
        bad = ~np.isin(values, (0, 1))
    elif not np.issubdtype(dtype, np.floating) and values.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(values) | (values != np.round(values))
    else:
        return values.astype(dtype)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        kind = "0/1 or true/false" if dtype == np.bool_ else "an integer"
        raise UsageError(f"{path}:{row + 2}: column {name!r} has {values[row].item()!r}, expected {kind} (row {row})")
    return values.astype(dtype)


def _check_rows(columns: dict[str, np.ndarray | PackedStrings], path: str) -> None:
    """UsageError naming the file and row of the first row without a path, or of a usable row (no
    `error`) whose duration is not a positive number of seconds (empty, NaN, inf, <= 0)."""
    offsets = columns["path"].offsets
    empty = np.flatnonzero(np.diff(offsets) == 0)
    if len(empty):
        row = int(empty[0])
        raise UsageError(f"{path}:{row + 2}: empty or null 'path' (row {row}); every row names a media file")
    duration = columns["duration"]
    usable = np.diff(columns["error"].offsets) == 0
    with np.errstate(invalid="ignore"):
        bad = usable & ~(np.isfinite(duration) & (duration > 0))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        value = "is empty (NaN)" if np.isnan(duration[row]) else f"has {float(duration[row])!r}"
        raise UsageError(f"{path}:{row + 2}: column 'duration' {value} in a row without an error "
                         f"(row {row}); a usable file needs a positive duration in seconds: probe it again "
                         f"with `avssl probe`, or set its 'error'")


def _parse_numbers(values: list[str], name: str, dtype: object, path: str) -> np.ndarray:
    text = np.array([("" if v is None else str(v)).strip() for v in values], dtype=str)
    try:
        if dtype == np.bool_:
            if not np.isin(text, list(_TRUE | _FALSE)).all():
                raise ValueError
            return np.isin(text, list(_TRUE))
        if np.issubdtype(dtype, np.floating):
            return np.where(text == "", "nan", text).astype(np.float64)
        as_float = np.where(text == "", "0", text).astype(np.float64)
        if not np.all(np.isfinite(as_float)) or np.any(as_float != np.round(as_float)):
            raise ValueError
        return as_float.astype(dtype)
    except ValueError:
        raise _locate_bad_value(text, name, dtype, path) from None


def _locate_bad_value(text: np.ndarray, name: str, dtype: object, path: str) -> UsageError:
    kind = "0/1 or true/false" if dtype == np.bool_ else (
        "a number" if np.issubdtype(dtype, np.floating) else "an integer")
    for row, value in enumerate(text.tolist()):
        try:
            if dtype == np.bool_:
                ok = value in _TRUE or value in _FALSE
            else:
                number = float(value or "0")
                ok = np.issubdtype(dtype, np.floating) or (math.isfinite(number) and number == round(number))
        except ValueError:
            ok = False
        if not ok:
            # line 1 is the header; Parquet has no lines, so report the row too
            return UsageError(f"{path}:{row + 2}: column {name!r} has {value!r}, expected {kind} (row {row})")
    return UsageError(f"{path}: column {name!r} could not be read as {kind}")


def _resolve_paths(paths: PackedStrings, base: str) -> PackedStrings:
    values = paths.to_list()
    if all(os.path.isabs(p) for p in values):
        return paths
    return PackedStrings.from_strings(p if os.path.isabs(p) or not p else os.path.join(base, p) for p in values)

