"""A large export read in many parts by several processes gives the points a plain read
gives, whether its points come one after another, alternate line by line, or come twice
(two downloads in one file); in the order of a read in one part per process, which is
the order their meters are made in."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from collector.imports import eloverblik, eloverblik_parts, eloverblik_rows
from collector.imports.utility import UtilityFile
from devtools.utility_files import local_stamps

HEADER = "MålepunktsID;Fra_dato;Til_dato;Mængde;Måleenhed;Kvalitet;Type"
T0 = 1_729_897_200_000  # 2024-10-25 23:00 UTC, a day before the autumn change
# not in the order of their GSRNs, which is the order points get within a chunk of rows
GSRNS = ["571313180400099999", "571313180400012345", "571313180400055555"]


def blocks(count: int, step: int) -> list[list[str]]:
    starts = np.arange(T0, T0 + count * step, step, dtype=np.int64)
    fra, til = local_stamps(starts, step)
    rng = np.random.default_rng(3)
    return [
        [
            f"{g};{a};{b};{rng.integers(0, 5000) / 1000:.3f};KWH;"
            f"{'Estimeret' if k % 13 == 0 else 'Målt'};Tidsserie".replace(".", ",", 1)
            for k, (a, b) in enumerate(zip(fra, til, strict=True))
        ]
        for g in GSRNS
    ]


def write(path: Path, lines: list[str]) -> Path:
    path.write_bytes(("\ufeff" + HEADER + "\r\n" + "\r\n".join(lines) + "\r\n").encode())
    return path


def plain(path: Path, monkeypatch: pytest.MonkeyPatch) -> UtilityFile:
    with monkeypatch.context() as m:
        m.setattr(eloverblik, "PARALLEL_BYTES", 1 << 40)
        return eloverblik.read_csv(path)


def same(a: UtilityFile, b: UtilityFile, in_order: bool = True) -> None:
    assert (a.rows, a.empty_rows) == (b.rows, b.empty_rows)
    if in_order:
        assert [p.gsrn for p in a.points] == [p.gsrn for p in b.points]
    by_gsrn = {q.gsrn: q for q in b.points}
    for p, q in zip(a.points, [by_gsrn[p.gsrn] for p in a.points], strict=True):
        assert (p.first_line, p.gaps, p.history.resolution_ms) == (
            q.first_line, q.gaps, q.history.resolution_ms,
        )  # fmt: skip
        assert p.history.start_ms.tolist() == q.history.start_ms.tolist()
        assert p.history.kwh.tolist() == q.history.kwh.tolist()
        assert p.history.estimated.tolist() == q.history.estimated.tolist()


@pytest.mark.parametrize("layout", ["one after another", "line by line", "twice"])
def test_an_export_read_in_many_parts_reads_as_a_plain_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layout: str
) -> None:
    points = blocks(300, 900_000)
    if layout == "one after another":
        lines = [row for point in points for row in point]
    elif layout == "line by line":
        lines = [row for rows in zip(*points, strict=True) for row in rows]
    else:
        lines = [row for point in points for row in point[:150]]
        lines += [row for point in points for row in point[150:]]
    path = write(tmp_path / "e.csv", lines)
    monkeypatch.setattr(eloverblik_rows, "CHUNK_ROWS", 100)
    whole = plain(path, monkeypatch)
    monkeypatch.setattr(eloverblik, "PARALLEL_BYTES", 1)
    monkeypatch.setattr(eloverblik, "MAX_PROCESSES", 2)
    halves = eloverblik.read_csv(path)
    monkeypatch.setattr(eloverblik_parts, "PART_BYTES", 7_000)
    many = eloverblik.read_csv(path)
    same(many, halves)
    same(many, whole, in_order=False)


def test_points_are_joined_across_the_cuts_of_the_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = [row for point in blocks(500, 3_600_000) for row in point]
    path = write(tmp_path / "e.csv", lines)
    spans = eloverblik_parts._cuts(path, 9)
    parts = [eloverblik_parts._part(path, s) for s in itertools.pairwise(spans)]
    assert any(not part.inside for part in parts)  # a part all of one point, cut on both sides
    joined = eloverblik_parts._join(str(path), parts, [True] + [False] * (len(parts) - 1))
    assert joined is not None
    same(UtilityFile(str(path), "eloverblik-csv", joined.points, joined.rows, joined.empty),
         plain(path, monkeypatch), in_order=False)  # fmt: skip
