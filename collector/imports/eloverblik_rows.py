"""An Eloverblik time-series export's rows as columns, every row checked: read from the
bytes where every line has the export's usual shape (eloverblik_lines), else by pandas'
CSV reader, which also names the file, line and reason of a fault."""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from collector.imports import eloverblik_lines
from collector.imports.eloverblik_lines import Parsed
from collector.imports.utility import Ints, fail, minutes, parse_local_times
from sparwatt.errors import ConfigError

CSV_HEADER = ("MålepunktsID", "Fra_dato", "Til_dato", "Mængde", "Måleenhed", "Kvalitet", "Type")
CHUNK_ROWS = 1_000_000
# DataHub's quality codes and the words the CSV export writes for them: measured values,
# values the grid company estimated or calculated, and values it does not have
MEASURED = {"a04", "målt", "maalt", "measured"}
ESTIMATED = {
    "a01", "a03", "a05", "a06", "d01", "estimeret", "beregnet", "justeret", "estimated",
    "calculated", "adjusted", "incomplete", "ufuldstændig",
}  # fmt: skip
NOT_AVAILABLE = {"a02", "ikke tilgængelig", "not available", "mangler"}
UNITS = {"kwh": 1.0, "mwh": 1000.0, "wh": 0.001}
QUALITY = dict.fromkeys(ESTIMATED, 1) | dict.fromkeys(MEASURED, 0) | dict.fromkeys(NOT_AVAILABLE, 2)
_QUALITY_NAMES = "is not a DataHub quality (Målt, Estimeret, Beregnet, or codes A01-A06)"
_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
# a quantity as the CSV reader takes it (decimal comma, no thousands separator)
_NUMBER = re.compile(r"\s*[+-]?(\d+,?\d*|,\d+)([eE][+-]?\d+)?\s*|\s*[+-]?inf(inity)?\s*", re.I)


def parse(path: Path, span: tuple[int, int] | None = None) -> Parsed:
    """The file's rows, or with `span` the lines in that byte range (numbered as if they
    followed the header); raises ConfigError naming the first fault."""
    _check_header(path)
    rows = _rows_at(path) if span is None else span
    fast = None if rows is None else eloverblik_lines.read(path, *rows, UNITS, QUALITY, CHUNK_ROWS)
    return fast or _parse_generally(path, span)


def _check_header(path: Path) -> None:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        header = tuple(h.strip() for h in handle.readline().rstrip("\r\n").split(";"))
    if header[: len(CSV_HEADER)] != CSV_HEADER:
        raise fail(str(path), 1, f"not an Eloverblik export: header {';'.join(header)!r}, "
                   f"expected {';'.join(CSV_HEADER)!r}")  # fmt: skip


def _rows_at(path: Path) -> tuple[int, int] | None:
    """Where the rows are, in bytes (None: a header line whose end the line reader might
    see elsewhere than the CSV reader does)."""
    with path.open("rb") as handle:
        head = handle.readline()
    if head.count(b"\r") > head.endswith(b"\r\n"):
        return None
    return len(head), path.stat().st_size


def _parse_generally(path: Path, span: tuple[int, int] | None = None) -> Parsed:
    name = str(path)
    codes: dict[str, int] = {}
    parts: dict[str, list[Any]] = {k: [] for k in ("code", "fra", "kwh", "est", "line", "span")}
    lengths: dict[int, int] = {}
    rows = empty = 0
    for raw in _chunks(path, span):
        lines = np.arange(rows, rows + len(raw), dtype=np.int64) + 2
        rows += len(raw)
        ids = [str(c).strip() for c in raw["MålepunktsID"].cat.categories]
        for gsrn in ids:
            if gsrn:
                codes.setdefault(gsrn, len(codes))
        id_codes = raw["MålepunktsID"].cat.codes.to_numpy()
        code = np.array([codes.get(g, -1) for g in ids] or [-1], dtype=np.int64)[id_codes]
        # a blank line keeps its place so line numbers stay true; it carries nothing
        filled = code >= 0
        chunk, lines, code = raw[filled], lines[filled], code[filled]
        fra = _times(name, lines, chunk["Fra_dato"])
        # the resolution comes from the spacing of Fra_dato, and for a point of one row
        # from its Til_dato; every row's length says whether it has that resolution
        til = _times(name, lines, chunk["Til_dato"])
        first = np.flatnonzero(np.diff(code, prepend=-1) != 0)
        for at in first.tolist():
            lengths.setdefault(int(code[at]), int(til[at]) - int(fra[at]))
        spans = minutes(til - fra)
        scale = _categories(name, lines, chunk["Måleenhed"], UNITS, "is not kWh, MWh or Wh")
        quality = _categories(name, lines, chunk["Kvalitet"], QUALITY, _QUALITY_NAMES)
        kwh = chunk["Mængde"].to_numpy(np.float64) * scale
        kwh[quality == 2] = np.nan
        empty += int(np.isnan(kwh).sum())
        for key, value in (
            ("code", code), ("fra", fra), ("kwh", kwh), ("est", quality == 1),
            ("line", lines), ("span", spans),
        ):  # fmt: skip
            parts[key].append(value)
    cols = {k: np.concatenate(v) if v else np.zeros(0, np.int64) for k, v in parts.items()}
    return Parsed(list(codes), cols, lengths, rows, empty)


def _chunks(path: Path, span: tuple[int, int] | None = None) -> Iterator[pd.DataFrame]:
    """The file's rows in frames of CHUNK_ROWS; with `span`, only the lines in that byte
    range (read under the file's header)."""
    dtypes: dict[str, Any] = dict.fromkeys(CSV_HEADER, "category")
    dtypes.update(Fra_dato=object, Til_dato=object, Mængde=np.float64)
    source: Path | io.BufferedReader = path
    if span is not None:
        source = io.BufferedReader(_Span(path, *span), buffer_size=1 << 20)
    try:
        with warnings.catch_warnings():
            # with index_col=False, a field past the seventh is dropped with a warning
            warnings.simplefilter("error", pd.errors.ParserWarning)
            yield from _frames(source, dtypes)
    except pd.errors.ParserWarning:
        raise _too_many_fields(path) from None
    except pd.errors.ParserError as exc:
        found = _FIELDS.search(str(exc))
        if found:
            want, line, saw = found.groups()
            raise fail(str(path), int(line), f"{saw} fields, expected {want}") from None
        raise fail(str(path), None, f"cannot read as CSV: {exc}") from None
    except UnicodeDecodeError:
        raise
    except ValueError:
        raise _bad_number(path) from None


def _frames(source: Path | io.BufferedReader, dtypes: dict[str, Any]) -> Iterator[pd.DataFrame]:
    # index_col=False: a line ending in a semicolon (an empty eighth field) is read as
    # without it, not shifted into an index
    yield from pd.read_csv(
        source,
        sep=";",
        decimal=",",
        encoding="utf-8-sig",
        dtype=dtypes,
        na_values={"Mængde": [""]},
        keep_default_na=False,
        skip_blank_lines=False,
        chunksize=CHUNK_ROWS,
        engine="c",
        index_col=False,
    )


def _too_many_fields(path: Path) -> ConfigError:
    """The first line with a non-empty field past the seventh."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        for n, line in enumerate(handle, start=1):
            fields = line.rstrip("\r\n").split(";")
            if n > 1 and any(f.strip() for f in fields[len(CSV_HEADER) :]):
                return fail(str(path), n, f"{len(fields)} fields, expected {len(CSV_HEADER)}")
    return fail(str(path), None, f"a line has more than {len(CSV_HEADER)} fields")


def _bad_number(path: Path) -> ConfigError:
    """The first quantity that is not a number (read again as text to find its line)."""
    for n, line in enumerate(path.open(encoding="utf-8-sig"), start=1):
        fields = line.rstrip("\r\n").split(";")
        if n > 1 and len(fields) > 3 and fields[3].strip() and not _NUMBER.fullmatch(fields[3]):
            return fail(str(path), n, f"quantity {fields[3]!r} is not a number")
    return fail(str(path), None, "a quantity is not a number")


def _times(path: str, lines: Ints, column: pd.Series) -> Ints:
    naive, bad = parse_local_times(column.to_numpy())
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise fail(path, int(lines[i]), f"{column.name} {column.iloc[i]!r} is not a time like "
                   "31-12-2024 23:00:00")  # fmt: skip
    return naive


def _categories(
    path: str, lines: Ints, column: pd.Series, table: dict[str, Any], what: str
) -> npt.NDArray[Any]:
    """A categorical column mapped through `table` (by its stripped, lower-case words)."""
    words = [str(c).strip().lower() for c in column.cat.categories]
    unknown = [w not in table for w in words]
    codes = column.cat.codes.to_numpy()
    if (codes < 0).any():  # a short line: pandas fills the missing fields with nothing
        i = int(np.flatnonzero(codes < 0)[0])
        raise fail(path, int(lines[i]), f"no {column.name} (too few fields)")
    # a word only a blank line had (its empty fields) is not a fault
    bad = np.flatnonzero(np.isin(codes, np.flatnonzero(unknown)))
    if len(bad):
        i = int(bad[0])
        value = str(column.iloc[i]).strip()
        why = f"{column.name} {value!r} {what}" if value else f"no {column.name}"
        raise fail(path, int(lines[i]), why)
    return np.array([table.get(w, 0) for w in words])[codes] if words else np.zeros(0)


class _Span(io.RawIOBase):
    """A byte range of a file, read after the file's header line."""

    def __init__(self, path: Path, start: int, end: int) -> None:
        self._file = path.open("rb")
        self._head = self._file.readline()
        self._file.seek(start)
        self._left = end - start

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._head:
            n = min(len(view), len(self._head))
            view[:n], self._head = self._head[:n], self._head[n:]
            return n
        n = self._file.readinto(view[: min(len(view), self._left)]) or 0
        self._left -= n
        return n

    def close(self) -> None:
        self._file.close()
        super().close()
