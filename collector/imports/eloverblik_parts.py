"""A large Eloverblik export read by several processes: the file cut into parts at line
boundaries, each part's rows parsed and its metering points checked by a worker, and the
points a cut runs through (the first and last of a part) joined and checked here.

Exports list one metering point after another, so only those few points cross a cut.
A point found whole in one part and again in another, or a fault anywhere, sends the
file back to a plain read, which checks it whole and names a fault with its true line.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import itertools
import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from collector.imports import eloverblik_points, eloverblik_rows
from collector.imports.eloverblik_lines import Parsed
from collector.imports.utility import PointSeries
from sparwatt.errors import ConfigError

PART_BYTES = 256 << 20  # a worker's task: small enough that its arrays stay small
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameters in glibc's malloc.h


@dataclass
class Part:
    """What a worker found in its part of the file; lines counted from the part's start."""

    inside: list[str]  # the points all of whose rows are in this part
    points: list[PointSeries]  # those of them with a value
    edges: Parsed  # the rows of its first and last point, which may go on past a cut
    runs: list[tuple[int, str]]  # (line, point) where the point changes from the line before
    rows: int
    empty: int


@dataclass
class Found:
    """A file's points and rows."""

    points: list[PointSeries]
    gsrns: list[str]
    rows: int
    empty: int


def read(path: Path, min_bytes: int, processes: int) -> Found | None:
    """The file read in parts by up to `processes` processes; None when it is smaller
    than `min_bytes` or there is one core (a plain read is then faster), or for a plain
    read to take over as above."""
    cores = min(os.cpu_count() or 1, processes)
    size = path.stat().st_size
    if cores < 2 or size < min_bytes or "fork" not in mp.get_all_start_methods():
        return None
    # the cuts of one part per core stay among the cuts: the order of the points (and so
    # of the meters made for them) is the one such a read gives (see `_codes`)
    per_core = _cuts(path, cores)
    cuts = sorted(set(per_core) | set(_cuts(path, -(-size // PART_BYTES))))
    spans = [(a, b) for a, b in itertools.pairwise(cuts) if b > a]
    try:
        with ProcessPoolExecutor(
            min(cores, len(spans)), mp.get_context("fork"), _keep_freed_memory
        ) as pool:
            parts = list(pool.map(_part, [path] * len(spans), spans))
        return _join(str(path), parts, [a in per_core for a, _ in spans])
    except ConfigError:
        return None


def _cuts(path: Path, count: int) -> list[int]:
    """Where `count` byte ranges of about equal size begin, each after a line break, and
    where the last ends."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        handle.readline()
        cuts = [handle.tell()]
        for k in range(1, count):
            handle.seek(max(size * k // count, cuts[-1]))
            handle.readline()
            cuts.append(handle.tell())
    return [*cuts, size]


def _part(path: Path, span: tuple[int, int]) -> Part:
    """A worker's task: its part's rows, with the points inside it checked."""
    parsed = eloverblik_rows.parse(path, span)
    code, line = parsed.cols["code"], parsed.cols["line"]
    changes = np.flatnonzero(np.diff(code, prepend=-1))
    runs = [(int(line[i]), parsed.gsrns[int(code[i])]) for i in changes.tolist()]
    edge = {runs[0][1], runs[-1][1]} if runs else set()
    at_edge = np.isin(code, [parsed.gsrns.index(g) for g in edge])
    rows = np.flatnonzero(~at_edge)
    inner: Any = rows
    if len(rows) and rows[-1] - rows[0] + 1 == len(rows):  # one block: no copies
        inner = slice(int(rows[0]), int(rows[-1]) + 1)
    inside = {g for _, g in runs} - edge
    points = eloverblik_points.points(str(path), _rows(parsed, inner))
    return Part(sorted(inside), points, _rows(parsed, at_edge), runs, parsed.rows, parsed.empty)


def _rows(parsed: Parsed, which: Any) -> Parsed:
    """Some of the rows, with everything else the same."""
    return dataclasses.replace(parsed, cols={k: v[which] for k, v in parsed.cols.items()})


def _keep_freed_memory() -> None:
    """Let a worker keep the memory it frees for its next block and part. The C library
    would hand a block's arrays back to the kernel and fault them in anew each time,
    which costs a third of the parse."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)
        libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)  # the most it takes
    except (OSError, AttributeError):  # not the GNU C library: its own habits
        pass


def _join(name: str, parts: list[Part], per_core: list[bool]) -> Found | None:
    """The parts' points as one file's: lines counted from the file's start, the points
    at the cuts joined and checked, all in the order of their codes."""
    inside: set[str] = set()
    whole: list[PointSeries] = []
    edges: list[Parsed] = []
    rows = empty = 0
    for part in parts:
        if inside & set(part.inside):
            return None
        inside.update(part.inside)
        whole += [
            dataclasses.replace(point, first_line=point.first_line + rows) for point in part.points
        ]
        edges.append(dataclasses.replace(
            part.edges, cols=dict(part.edges.cols, line=part.edges.cols["line"] + rows)
        ))  # fmt: skip
        rows += part.rows
        empty += part.empty
    joined = _merge(edges)
    at_cuts = {joined.gsrns[c] for c in np.unique(joined.cols["code"]).tolist()}
    if at_cuts & inside:
        return None
    codes = _codes(parts, per_core)
    found = [*whole, *eloverblik_points.points(name, joined)]
    found.sort(key=lambda p: codes[p.gsrn])
    return Found(found, list(codes), rows, empty)


def _codes(parts: list[Part], per_core: list[bool]) -> dict[str, int]:
    """Each point's code as the rows reader hands them out when the file is read in one
    part per core (`per_core`: which parts begin one): per such part, per chunk of its
    rows, in the order of the GSRNs."""
    codes: dict[str, int] = {}
    chunk: set[str] = set()
    at = base = 0
    key = (-1, -1)
    for part, new in zip(parts, per_core, strict=True):
        base = at if new else base
        for line, gsrn in part.runs:
            here = (base, (at + line - 2 - base) // eloverblik_rows.CHUNK_ROWS)
            if here != key:
                for g in sorted(chunk):
                    codes.setdefault(g, len(codes))
                chunk, key = set(), here
            chunk.add(gsrn)
        at += part.rows
    for g in sorted(chunk):
        codes.setdefault(g, len(codes))
    return codes


def _merge(parts: list[Parsed]) -> Parsed:
    """Rows of several parts as one: point codes made common."""
    codes: dict[str, int] = {}
    cols: dict[str, list[Any]] = {k: [] for k in parts[0].cols}
    lengths: dict[int, int] = {}
    for part in parts:
        remap = np.array([codes.setdefault(g, len(codes)) for g in part.gsrns] or [0])
        for code, length in part.lengths.items():
            lengths.setdefault(int(remap[code]), length)
        for key, value in dict(part.cols, code=remap[part.cols["code"]]).items():
            cols[key].append(value)
    merged = {k: np.concatenate(v) for k, v in cols.items()}
    return Parsed(list(codes), merged, lengths, sum(p.rows for p in parts), 0)
