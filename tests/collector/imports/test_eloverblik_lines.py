"""Export lines read from their bytes give exactly what the CSV reader gives, and a line
of another shape leaves the file to the CSV reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.imports import eloverblik_lines, eloverblik_rows
from collector.imports.eloverblik_lines import Parsed

HEADER = "MålepunktsID;Fra_dato;Til_dato;Mængde;Måleenhed;Kvalitet;Type"
QUALITIES = ["Målt", "Estimeret", "Beregnet", "A04", "A02", "Ikke tilgængelig", " målt "]


def export(path: Path, lines: list[str], end: str = "\r\n") -> Path:
    path.write_bytes(("\ufeff" + HEADER + end + end.join(lines) + end).encode())
    return path


def same(a: Parsed, b: Parsed) -> None:
    assert (a.gsrns, a.lengths, a.rows, a.empty) == (b.gsrns, b.lengths, b.rows, b.empty)
    for key in ("code", "fra", "est", "line"):
        assert a.cols[key].tolist() == b.cols[key].tolist(), key
    assert np.array_equal(a.cols["kwh"], b.cols["kwh"], equal_nan=True)


def by_lines(path: Path) -> Parsed | None:
    start, end = eloverblik_rows._rows_at(path) or (0, 0)
    return eloverblik_lines.read(
        path, start, end, eloverblik_rows.UNITS, eloverblik_rows.QUALITY,
        eloverblik_rows.CHUNK_ROWS,
    )  # fmt: skip


def both(path: Path) -> tuple[Parsed | None, Parsed]:
    """(the line reader's rows or None, the CSV reader's rows)."""
    return by_lines(path), eloverblik_rows._parse_generally(path)


LINE = "{};{:02d}-{:02d}-20{:02d} {:02d}:{:02d}{};{:02d}-{:02d}-20{:02d} 23:45;{};{};{};Tidsserie"
line = st.builds(
    LINE.format,
    st.sampled_from(["571313180400012345", "571313180400099999", "571313100000000007"]),
    st.integers(1, 28), st.integers(1, 12), st.integers(20, 30), st.integers(0, 23),
    st.sampled_from([0, 15, 30, 45]), st.sampled_from(["", ":00"]),
    st.integers(1, 28), st.integers(1, 12), st.integers(20, 30),
    st.one_of(
        st.just(""), st.integers(0, 99999).map(str),
        st.tuples(st.integers(0, 9999), st.sampled_from([1, 2, 3]), st.integers(0, 999)).map(
            lambda t: f"{t[0]},{t[2] % 10 ** t[1]:0{t[1]}d}"
        ),
    ),
    st.sampled_from(["KWH", "kWh", "MWH", "Wh"]),
    st.sampled_from(QUALITIES),
)  # fmt: skip


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(line, min_size=1, max_size=60), st.sampled_from(["\r\n", "\n"]))
def test_lines_of_the_usual_shape_read_as_the_csv_reader_reads_them(
    tmp_path: Path, lines: list[str], end: str
) -> None:
    fast, general = both(export(tmp_path / "e.csv", lines, end))
    assert fast is not None
    same(fast, general)


def test_codes_follow_the_csv_readers_chunks_across_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CSV reader numbers points per chunk of its rows in the order of their GSRNs;
    blocks of bytes end elsewhere than its chunks."""
    gsrns = ["571313180400099999", "571313180400012345", "571313180400055555"]
    lines = [
        f"{gsrns[(k // 7) % 3]};01-01-2024 {k % 24:02d}:00:00;01-01-2024 23:00:00;1,5;KWH;Målt;T"
        for k in range(200)
    ]
    path = export(tmp_path / "e.csv", lines)
    monkeypatch.setattr(eloverblik_lines, "BLOCK_BYTES", 700)
    monkeypatch.setattr(eloverblik_rows, "CHUNK_ROWS", 11)
    fast, general = both(path)
    assert fast is not None
    same(fast, general)


@pytest.mark.parametrize(
    "odd",
    [
        '571313180400012345;01-01-2024 01:00;01-01-2024 02:00;"1,5";KWH;Målt;Tidsserie',
        "",
        "571313180400012345;01-01-2024 01:00;01-01-2024 02:00;1,5;KWH;Målt;Tids\rserie",
        "571313180400012345;01-01-2024 01:00;01-01-2024 02:00;1,5432;KWH;Målt;Tidsserie",
        "571313180400012345;01-01-2024 01:00;01-01-2024 02:00;-1;KWH;Målt;Tidsserie",
        "571313180400012345;2024-01-01 01:00;2024-01-01 02:00;1;KWH;Målt;Tidsserie",
        " 571313180400012345;01-01-2024 01:00;01-01-2024 02:00;1;KWH;Målt;Tidsserie",
        "571313180400012345;01-01-2024 01:00;01-01-2024 02:00;1;KWH;Gættet;Tidsserie",
    ],
)
def test_a_line_of_another_shape_leaves_the_file_to_the_csv_reader(
    tmp_path: Path, odd: str
) -> None:
    first = "571313180400012345;01-01-2024 00:00;01-01-2024 01:00;2;KWH;Målt;Tidsserie"
    assert by_lines(export(tmp_path / "e.csv", [first, odd])) is None
