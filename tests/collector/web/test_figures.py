"""Site figures and the live hub, without a database or a server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.analysis.site_context import OpeningHours, SiteContext
from collector.web import figures, site_calendar, svg
from collector.web.live import LiveHub
from sparwatt import wire

CPH = ZoneInfo("Europe/Copenhagen")
Q = figures.INTERVAL_MS


def _ms(*args: int, tz: ZoneInfo = CPH) -> int:
    return int(datetime(*args, tzinfo=tz).timestamp() * 1000)  # type: ignore[misc]


def test_totals_sum_meters_per_interval_and_keep_estimates() -> None:
    rows = [
        ("gw1", "m1", 0, 1.0, 0, 4000.0, 5000.0),
        ("gw1", "m2", 0, 0.5, 1, 2000.0, None),
        ("gw1", "m1", Q, None, 0, None, None),
    ]
    points = figures.totals(rows)
    assert points == [
        figures.Point(0, 1.5, 6000.0, 5000.0, True),
        figures.Point(Q, None, None, None, False),
    ]


def test_days_follow_local_midnight_across_the_autumn_clock_change() -> None:
    # 2026-10-25 in Copenhagen has 25 hours: 100 quarter hours
    start = _ms(2026, 10, 25)
    points = [figures.Point(start + i * Q, 0.25, 1000.0, 1000.0) for i in range(100 + 96)]
    days = figures.bucket(points, "1d", CPH)
    assert [d.start_ms for d in days] == [start, _ms(2026, 10, 26)]
    assert [d.energy_kwh for d in days] == [25.0, 24.0]
    hours = figures.bucket(points, "1h", CPH)
    assert len(hours) == 49
    assert all(h.energy_kwh == pytest.approx(1.0) for h in hours)


def test_base_load_is_a_low_percentile_not_the_single_lowest_interval() -> None:
    values = [0.0] + [10_000.0] * 99 + [50_000.0] * 100
    points = [figures.Point(i * Q, 1.0, v, v) for i, v in enumerate(values)]
    assert figures.base_load_w(points) == 10_000.0
    assert figures.base_load_w([]) is None


def test_heatmap_places_power_by_local_weekday_and_hour() -> None:
    monday_8 = _ms(2026, 11, 23, 8)
    sunday_23 = _ms(2026, 11, 29, 23, 45)
    grid = figures.heatmap(
        [
            figures.Point(monday_8, 1, 3000.0, None),
            figures.Point(monday_8 + Q, 1, 5000.0, None),
            figures.Point(sunday_23, 1, 1000.0, None),
        ],
        CPH,
    )
    assert grid[0][8] == 4.0
    assert grid[6][23] == 1.0
    assert sum(v is not None for row in grid for v in row) == 2


def test_missing_intervals_are_reported_as_runs_inside_the_data() -> None:
    have = [0, 1, 2, 5, 6, 9]
    points = [figures.Point(i * Q, 1.0, 1.0, 1.0) for i in have]
    gaps = figures.missing(points, 0, 20 * Q)
    assert [(g.from_ms // Q, g.to_ms // Q) for g in gaps] == [(3, 5), (7, 9)]


def test_summary_sums_energy_and_coverage() -> None:
    monday = _ms(2026, 11, 23)
    points = [figures.Point(monday + i * Q, 1.0, 4000.0, 4000.0) for i in range(96)]
    summary = figures.summarize(points, monday, monday + 96 * Q)
    assert summary.energy_kwh == 96.0
    assert summary.coverage == 1.0


def test_off_hours_share_follows_the_sites_opening_hours_and_holidays() -> None:
    ctx = SiteContext(opening_hours={"mon": ["06:00-22:00"]})  # Tuesday to Friday 07-17
    monday = _ms(2026, 11, 23)
    day = [figures.Point(monday + i * Q, 1.0, 4000.0, 4000.0) for i in range(96)]
    share = site_calendar.off_hours_share(day, monday, monday + 96 * Q, "s", ctx)
    assert share == pytest.approx(32 / 96)  # open 06-22: 64 of 96 quarter hours
    christmas = _ms(2026, 12, 25)  # a Friday, and a Danish public holiday: closed all day
    day = [figures.Point(christmas + i * Q, 1.0, 4000.0, 4000.0) for i in range(96)]
    assert site_calendar.off_hours_share(day, christmas, christmas + 96 * Q, "s", ctx) == 1.0


def test_opening_hours_read_as_runs_of_days() -> None:
    hours = OpeningHours(sat=["08:00-12:00", "13:00-15:30"], sun=["08:00-12:00", "13:00-15:30"])
    assert site_calendar.opening_hours_text(hours) == (
        "Monday to Friday 07:00-17:00; Saturday and Sunday 08:00-12:00, 13:00-15:30"
    )
    assert site_calendar.opening_hours_text(OpeningHours(wed=[], sun=["00:00-24:00"])) == (
        "Monday and Tuesday 07:00-17:00; Wednesday closed; Thursday and Friday 07:00-17:00; "
        "Saturday closed; Sunday 00:00-24:00"
    )


@given(st.lists(st.one_of(st.none(), st.floats(0, 1e6)), min_size=1, max_size=200))
def test_charts_draw_any_series_including_gaps_and_zeros(values: list[float | None]) -> None:
    xs = [i * Q for i in range(len(values))]
    out = svg.line_chart(xs, values, CPH, "t") + svg.bar_chart([str(i) for i in xs], values, "t")
    out += svg.heatmap([values[:24] + [None] * (24 - len(values[:24]))] * 7, "t")
    assert out.count("<svg") == 3
    assert "nan" not in out.lower()


def test_chart_titles_are_escaped() -> None:
    assert "<script>" not in svg.line_chart([0], [1.0], CPH, "<script>x</script>")


def _message(site: str, meter: str, power: float, second: int) -> wire.ReadingsMessage:
    ts = datetime(2026, 11, 26, 12, 0, second, tzinfo=UTC)
    return wire.ReadingsMessage(
        site=site,
        gateway="gw1",
        seq=second,
        sent_at=ts,
        readings=[wire.Reading(meter=meter, ts=ts, values={"power_w": power})],
    )


def test_hub_sends_each_site_only_its_newest_power_per_meter() -> None:
    async def scenario() -> list[dict[str, object] | None]:
        hub = LiveHub()
        sub_a, sub_b = hub.subscribe("site-a"), hub.subscribe("site-b")
        hub.publish(
            [
                _message("site-a", "m1", 1.0, 1),
                _message("site-a", "m1", 2.0, 2),
                _message("site-c", "m1", 9.0, 1),
            ]
        )
        hub.close()
        got = [await asyncio.wait_for(sub_a.queue.get(), 1) for _ in range(2)]
        got.append(await asyncio.wait_for(sub_b.queue.get(), 1))
        assert sub_b.queue.empty()
        hub.unsubscribe(sub_a)
        assert hub.subscribers("site-a") == 0
        return got

    first, end_a, end_b = asyncio.run(scenario())
    assert first is not None
    assert first["values"] == {"gw1/m1": [_ms(2026, 11, 26, 12, 0, 2, tz=UTC), 2.0]}
    assert end_a is None
    assert end_b is None


def test_a_slow_stream_drops_its_oldest_events_and_ingest_never_blocks() -> None:
    async def scenario() -> tuple[int, float]:
        hub = LiveHub()
        sub = hub.subscribe("site-a")
        for i in range(500):
            hub.publish([_message("site-a", "m1", float(i), i % 60)])
        await asyncio.sleep(0.05)
        size = sub.queue.qsize()
        last: dict[str, object] | None = None
        while not sub.queue.empty():
            last = sub.queue.get_nowait()
        assert last is not None
        return size, last["values"]["gw1/m1"][1]  # type: ignore[index]

    size, newest = asyncio.run(scenario())
    assert size == 64
    assert newest == 499.0
