"""RS485 bus budget: line time from baud, framing and plan; overloaded configs refused."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway import bus_budget, settings
from sparwatt import configfile
from sparwatt.errors import ConfigError


def config(
    baud: int, meters: int, interval_s: float = 1.0, transport: str = "rtu", **bus: Any
) -> dict[str, Any]:
    line: dict[str, Any] = {"id": "line1", "transport": transport, "baud": baud, **bus}
    if transport == "rtu":
        line["device"] = "/dev/ttyUSB0"
    else:
        line["host"] = "192.0.2.1"
    return {
        "gateway": {"site": "s", "id": "g"},
        "buses": [line],
        "meters": [
            {
                "id": f"m{u}",
                "bus": "line1",
                "unit": u,
                "model": "eastron-sdm630",
                "interval_s": interval_s,
            }
            for u in range(1, meters + 1)
        ],
    }


@pytest.mark.parametrize(
    ("bytesize", "parity", "stopbits", "bits"),
    [
        (8, "N", 1, 11),
        (8, "E", 1, 11),
        (8, "O", 1, 11),
        (8, "N", 2, 11),
        (8, "E", 2, 12),
        (7, "E", 1, 11),
    ],
)
def test_a_character_takes_at_least_the_modbus_rtu_eleven_bits(
    bytesize: int, parity: str, stopbits: int, bits: int
) -> None:
    assert bus_budget.char_bits(bytesize, parity, stopbits) == bits


def test_request_time_counts_request_response_and_two_gaps() -> None:
    # 2 registers: 8 + 5 + 4 = 17 characters plus 2 x 3.5 gap characters, 11 bits each
    assert bus_budget.request_time_s(2, 9600) == pytest.approx(24 * 11 / 9600)
    # above 19200 baud the gap is a fixed 1.75 ms
    assert bus_budget.request_time_s(2, 38400) == pytest.approx(17 * 11 / 38400 + 0.0035)


def test_sdm630_full_read_load_matches_its_three_blocks() -> None:
    cfg = configfile.validate(settings.GatewayConfig, config(9600, 1, 10.0), "test")
    load = bus_budget.bus_load(cfg.buses[0], cfg)
    (meter,) = load.meters
    assert meter.requests == 3
    assert meter.registers == 80 + 26 + 6
    expected = sum(bus_budget.request_time_s(n, 9600) for n in (80, 26, 6))
    assert meter.read_s == pytest.approx(expected)
    assert load.utilisation == pytest.approx(expected / 10.0)


def test_config_that_cannot_meet_its_intervals_is_refused_with_the_numbers(tmp_path) -> None:
    path = tmp_path / "gw.toml"
    data = config(9600, 4)
    lines = [
        '[gateway]\nsite = "s"\nid = "g"\n[[buses]]\nid = "line1"\ntransport = "rtu"\n'
        'device = "/dev/ttyUSB0"\nbaud = 9600\n'
    ]
    for m in data["meters"]:
        lines.append(
            f'[[meters]]\nid = "{m["id"]}"\nbus = "line1"\nunit = {m["unit"]}\n'
            f'model = "eastron-sdm630"\ninterval_s = 1\n'
        )
    path.write_text("".join(lines))
    with pytest.raises(ConfigError) as caught:
        settings.load(path)
    message = "\n".join(caught.value.problems)
    assert str(path) in message
    assert "buses.line1" in message
    assert "9600 baud 8N1: 130% busy" in message
    assert "m1 3 requests 325.4 ms every 1 s" in message


def test_same_meters_fit_at_a_higher_baud_or_longer_interval() -> None:
    configfile.validate(settings.GatewayConfig, config(38400, 4), "test")
    configfile.validate(settings.GatewayConfig, config(9600, 4, interval_s=2.0), "test")


@pytest.mark.parametrize("transport", ["tcp", "rtu-over-tcp"])
def test_a_converter_is_timed_only_when_its_serial_speed_is_given(transport: str) -> None:
    unknown = config(300, 10, transport=transport)
    del unknown["buses"][0]["baud"]  # a TCP meter, or a converter whose line speed is unknown
    configfile.validate(settings.GatewayConfig, unknown, "test")
    with pytest.raises(ConfigError, match=r"buses\.line1: the configured reads need more time"):
        configfile.validate(settings.GatewayConfig, config(300, 10, transport=transport), "test")
    fits = configfile.validate(
        settings.GatewayConfig, config(115200, 1, 10.0, transport=transport), "test"
    )
    assert bus_budget.problems(fits) == []


def test_parity_and_stop_bits_count_toward_the_budget() -> None:
    plain = configfile.validate(settings.GatewayConfig, config(9600, 1, 10.0), "test")
    wide = configfile.validate(
        settings.GatewayConfig, config(9600, 1, 10.0, parity="E", stopbits=2), "test"
    )
    ratio = (
        bus_budget.bus_load(wide.buses[0], wide).utilisation
        / bus_budget.bus_load(plain.buses[0], plain).utilisation
    )
    assert ratio == pytest.approx(12 / 11)


@given(
    st.integers(min_value=1200, max_value=115200),
    st.integers(min_value=1200, max_value=115200),
    st.integers(min_value=1, max_value=125),
)
def test_a_faster_line_never_takes_longer(slow: int, fast: int, registers: int) -> None:
    slow, fast = sorted((slow, fast))
    assert (
        bus_budget.request_time_s(registers, fast)
        <= bus_budget.request_time_s(registers, slow) + 1e-12
    )


def test_each_schedule_group_is_budgeted_at_its_own_interval() -> None:
    data = config(9600, 1, interval_s=60.0)
    data["meters"][0]["groups"] = [{"quantities": ["power_w"], "interval_s": 1}]
    cfg = configfile.validate(settings.GatewayConfig, data, "test")
    fast, slow = bus_budget.bus_load(cfg.buses[0], cfg).meters
    assert (fast.interval_s, fast.requests, fast.registers) == (1, 1, 2)
    assert fast.read_s == pytest.approx(bus_budget.request_time_s(2, 9600))
    assert slow.interval_s == 60
    assert slow.requests == 3
