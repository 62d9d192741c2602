"""The shipped meter library, the schema's refusals, and the docs that describe both."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from gateway import decode, planner
from gateway.meter_maps import WORDS, MeterMap, library, load_file, parse
from sparwatt.errors import ConfigError
from sparwatt.wire import QUANTITIES

ROOT = Path(__file__).resolve().parents[2]
METERLIB = ROOT / "gateway" / "meterlib"
FILES = sorted(METERLIB.glob("*.toml"))
IDS = [p.stem for p in FILES]


def test_library_holds_exactly_the_files_in_meterlib() -> None:
    assert sorted(library()) == IDS
    assert {
        "eastron-sdm630",
        "eastron-sdm120",
        "eastron-sdm72d",
        "carlo-gavazzi-em24",
        "carlo-gavazzi-em340",
        "abb-b23",
        "schneider-iem3155",
        "janitza-umg96rm",
        "sunspec-203",
    } <= set(IDS)


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_shipped_map_loads_and_its_id_matches_the_file_name(path: Path) -> None:
    meter = library()[path.stem]
    assert meter.id == path.stem
    assert load_file(path) == meter


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_shipped_map_cites_its_source_in_a_top_comment(path: Path) -> None:
    lines = path.read_text().splitlines()
    header = []
    for line in lines:
        if not line.startswith("#"):
            break
        header.append(line)
    assert len(header) >= 2, "the file must open with a comment naming its source document"
    assert len(library()[path.stem].source) >= 10


@pytest.mark.parametrize("model_id", IDS)
def test_every_map_has_power_and_imported_energy(model_id: str) -> None:
    quantities = library()[model_id].quantities
    assert "power_w" in quantities
    assert "energy_import_kwh" in quantities


@pytest.mark.parametrize("model_id", IDS)
def test_no_two_quantities_share_a_register(model_id: str) -> None:
    meter = library()[model_id]
    taken: dict[tuple[str, int], str] = {}
    for name, fld in meter.quantities.items():
        for address in range(fld.address, fld.address + fld.words):
            key = (meter.field_function(name), address)
            assert key not in taken, f"{name} overlaps {taken.get(key)}"
            taken[key] = name


@pytest.mark.parametrize("model_id", [i for i in IDS if library()[i].identify is not None])
def test_identify_values_fit_their_register_type(model_id: str) -> None:
    ident = library()[model_id].identify
    assert ident is not None
    for value in ident.values:
        words = decode.encode_raw(value, ident.type)
        assert len(words) == WORDS[ident.type]
        assert decode.raw_value(words, ident.type) == value


# Hand-computed register contents and the reading the map must turn them into.
GOLDEN = [
    ("eastron-sdm120", "voltage_l1_v", [0x4366, 0x0000], None, 230.0),
    ("eastron-sdm72d", "energy_import_kwh", [0x447A, 0x0000], None, 1000.0),
    ("carlo-gavazzi-em24", "voltage_l1_v", [0x08FD, 0x0000], None, 230.1),  # 2301, LSW first
    ("carlo-gavazzi-em24", "power_w", [0xCFC7, 0xFFFF], None, -1234.5),
    ("carlo-gavazzi-em24", "power_factor", [0xFC7C], None, -0.9),
    ("carlo-gavazzi-em24", "energy_import_kwh", [0xD687, 0x0012], None, 123456.7),
    ("carlo-gavazzi-em340", "current_l1_a", [0x1538, 0x0000], None, 5.432),
    ("carlo-gavazzi-em340", "frequency_hz", [0x01F4], None, 50.0),
    ("abb-b23", "energy_import_kwh", [0x0000, 0x0000, 0x075B, 0xCD15], None, 1234567.89),
    ("abb-b23", "power_w", [0xFFFD, 0xB610], None, -1500.0),
    ("abb-b23", "current_l1_a", [0x0000, 0x03E8], None, 10.0),
    ("abb-b23", "frequency_hz", [0x138A], None, 50.02),
    ("schneider-iem3155", "power_w", [0x3FC0, 0x0000], None, 1500.0),  # 1.5 kW
    ("schneider-iem3155", "energy_import_kwh", [0x0000, 0x0000, 0x0012, 0xD687], None, 1234.567),
    ("janitza-umg96rm", "energy_import_kwh", [0x447A, 0x0000], None, 1.0),  # 1000 Wh
    ("janitza-umg96rm", "voltage_l1_v", [0x4366, 0x0000], None, 230.0),
    ("sunspec-203", "power_w", [0xFB2E], -1, -123.4),
    ("sunspec-203", "power_factor", [0x251C], -2, 0.95),  # 9500 * 10^-2 %
    ("sunspec-203", "energy_import_kwh", [0x0001, 0xE240], 0, 123.456),  # 123456 Wh
]


# A plausible three-phase reading in canonical units.
TYPICAL = {
    "voltage_l1_v": 230.1,
    "voltage_l2_v": 231.4,
    "voltage_l3_v": 229.8,
    "voltage_l1_l2_v": 399.2,
    "voltage_l2_l3_v": 400.1,
    "voltage_l3_l1_v": 398.7,
    "current_l1_a": 12.345,
    "current_l2_a": 11.2,
    "current_l3_a": 10.05,
    "current_n_a": 1.5,
    "power_w": 7845.6,
    "power_l1_w": 2740.1,
    "power_l2_w": 2590.3,
    "power_l3_w": -2515.2,
    "reactive_power_var": -1234.5,
    "apparent_power_va": 8250.7,
    "power_factor": 0.951,
    "power_factor_l1": 0.962,
    "power_factor_l2": -0.944,
    "power_factor_l3": 0.93,
    "frequency_hz": 50.02,
    "energy_import_kwh": 123456.7,
    "energy_export_kwh": 2345.6,
    "reactive_energy_import_kvarh": 3456.7,
    "reactive_energy_export_kvarh": 456.7,
    "energy_import_l1_kwh": 41152.2,
    "energy_import_l2_kwh": 40000.1,
    "energy_import_l3_kwh": 42304.4,
}
INT_LIMIT = {
    "i16": 2**15 - 1,
    "u16": 2**16 - 1,
    "i32": 2**31 - 1,
    "u32": 2**32 - 1,
    "i64": 2**63 - 1,
    "u64": 2**64 - 1,
}


def _exponents(meter: MeterMap) -> dict[int, int]:
    """The scale-factor value a SunSpec-style device would choose: the finest that fits."""
    chosen: dict[int, int] = {}
    for name, fld in meter.quantities.items():
        if fld.scale_register is None:
            continue
        exponent = -3
        while abs(TYPICAL[name] / decode.factor(fld) / 10.0**exponent) > INT_LIMIT[fld.type]:
            exponent += 1
        chosen[fld.scale_register] = max(chosen.get(fld.scale_register, -3), exponent)
    return chosen


@pytest.mark.parametrize("model_id", IDS)
def test_typical_reading_survives_each_register_encoding(model_id: str) -> None:
    meter = library()[model_id]
    exponents = _exponents(meter)
    for name, fld in meter.quantities.items():
        value = TYPICAL[name]
        exponent = exponents.get(fld.scale_register) if fld.scale_register is not None else None
        step = decode.factor(fld) * 10.0 ** (exponent or 0)
        raw = value / step
        if fld.type.startswith("u") and raw < 0:
            value, raw = -value, -raw  # unsigned registers hold magnitudes
        words = decode.encode_raw(
            raw, fld.type, fld.word_order or meter.word_order, fld.byte_order or meter.byte_order
        )
        back = decode.field_value(meter, fld, words, exponent)
        tolerance = step * 0.51 if not fld.type.startswith("f") else abs(value) * 1e-6
        assert back == pytest.approx(value, abs=tolerance), name
        assert decode.plausible(name, back), name


@pytest.mark.parametrize(("model_id", "name", "words", "exponent", "expected"), GOLDEN)
def test_map_decodes_known_register_contents(
    model_id: str, name: str, words: list[int], exponent: int | None, expected: float
) -> None:
    meter = library()[model_id]
    fld = meter.quantities[name]
    assert decode.field_value(meter, fld, words, exponent) == pytest.approx(expected)


# --- schema refusals -------------------------------------------------------------------


def _valid() -> dict[str, Any]:
    return {
        "id": "test-meter",
        "manufacturer": "Acme",
        "model": "X1",
        "source": "Acme X1 Modbus manual rev 1",
        "quantities": {
            "power_w": {"address": 52, "register": 30053, "type": "f32", "unit": "W"},
            "energy_import_kwh": {"address": 72, "register": 30073, "type": "f32", "unit": "kWh"},
        },
    }


def _problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        parse(data, "test.toml")
    return exc.value.problems


def test_valid_map_parses() -> None:
    meter = parse(_valid(), "test.toml")
    assert isinstance(meter, MeterMap)
    assert meter.quantities["power_w"].register_no == 30053


def test_register_number_one_off_from_the_address_is_refused() -> None:
    data = _valid()
    data["quantities"]["power_w"]["register"] = 30052
    assert _problems(data) == [
        "test.toml: (top level): quantities.power_w: register 30052 is address 51 as a "
        "input register, but address says 52"
    ]


def test_holding_register_numbers_count_from_40001() -> None:
    data = _valid()
    data["function"] = "holding"
    data["quantities"]["power_w"]["register"] = 40053
    data["quantities"]["energy_import_kwh"]["register"] = 400073  # six-digit form
    parse(data, "test.toml")
    data["quantities"]["power_w"]["register"] = 30053
    assert _problems(data) == [
        "test.toml: (top level): quantities.power_w: register 30053 is address -9948 as a "
        "holding register, but address says 52"
    ]


def test_unknown_unit_is_refused() -> None:
    data = _valid()
    data["quantities"]["power_w"]["unit"] = "Watt"
    assert _problems(data) == [
        "test.toml: (top level): quantities.power_w.unit: unknown unit 'Watt'"
    ]


def test_unit_that_cannot_convert_to_the_quantity_unit_is_refused() -> None:
    data = _valid()
    data["quantities"]["voltage_l1_v"] = {"address": 0, "type": "f32", "unit": "kWh"}
    assert _problems(data) == [
        "test.toml: (top level): quantities.voltage_l1_v.unit: 'kWh' cannot convert to 'V'"
    ]


def test_field_overlapping_a_forbidden_range_is_refused() -> None:
    data = _valid()
    data["forbidden"] = [[53, 60]]
    assert _problems(data) == [
        "test.toml: (top level): quantities.power_w: registers 52-53 overlap forbidden "
        "range [53, 60]"
    ]


def test_scale_register_inside_a_forbidden_range_is_refused() -> None:
    data = _valid()
    data["forbidden"] = [[100, 110]]
    data["quantities"]["power_w"]["scale_register"] = 105
    assert _problems(data) == [
        "test.toml: (top level): quantities.power_w.scale_register lies in a forbidden range"
    ]


def test_backwards_forbidden_range_is_refused() -> None:
    data = _valid()
    data["forbidden"] = [[10, 5]]
    assert _problems(data) == [
        "test.toml: (top level): forbidden range [10, 5] is not 0 <= start <= end"
    ]


def test_unknown_quantity_name_is_refused() -> None:
    data = _valid()
    data["quantities"]["power_kw"] = {"address": 0, "type": "f32", "unit": "kW"}
    assert _problems(data) == [
        "test.toml: (top level): quantities.power_kw: not a canonical quantity "
        "(see docs/quantities.md)"
    ]


def test_unknown_top_level_key_is_refused() -> None:
    data = _valid()
    data["baudrate"] = 9600
    assert _problems(data) == ["test.toml: baudrate: Extra inputs are not permitted (got 9600)"]


def test_unknown_key_inside_a_quantity_is_refused() -> None:
    data = _valid()
    data["quantities"]["power_w"]["scael"] = 0.1
    assert _problems(data) == [
        "test.toml: quantities.power_w.scael: Extra inputs are not permitted (got 0.1)"
    ]


def test_every_problem_of_a_map_is_reported_on_its_own_line() -> None:
    data = _valid()
    data["quantities"]["power_w"]["unit"] = "Watt"
    data["quantities"]["energy_import_kwh"]["register"] = 30072
    assert _problems(data) == [
        "test.toml: (top level): quantities.power_w.unit: unknown unit 'Watt'",
        "test.toml: (top level): quantities.energy_import_kwh: register 30072 is address 71 "
        "as a input register, but address says 72",
    ]


def test_problems_in_a_file_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "acme-x1.toml"
    path.write_text(
        'id = "acme-x1"\nmanufacturer = "Acme"\nmodel = "X1"\n'
        'source = "Acme X1 Modbus manual rev 1"\n\n[quantities]\n'
        'power_w = { address = 52, register = 30052, type = "f32", unit = "W" }\n'
    )
    with pytest.raises(ConfigError) as exc:
        load_file(path)
    assert exc.value.problems == [
        f"{path}: (top level): quantities.power_w: register 30052 is address 51 as a input "
        "register, but address says 52"
    ]


# --- "not available" markers --------------------------------------------------------------


def test_markers_resolve_per_register_before_per_type() -> None:
    data = _valid()
    data["not_available"] = {"i16": [0x8000], "u32": [0xFFFFFFFF]}
    data["quantities"]["power_w"] = {"address": 52, "type": "i16", "unit": "W"}
    data["quantities"]["energy_import_kwh"] = {
        "address": 72,
        "type": "u32",
        "unit": "kWh",
        "not_available": [0],
    }
    meter = parse(data, "test.toml")
    assert meter.markers("power_w") == [0x8000]
    assert meter.markers("energy_import_kwh") == [0]
    assert meter.scale_markers() == [0x8000]


def test_type_marker_wider_than_its_type_is_refused() -> None:
    data = _valid()
    data["not_available"] = {"i16": [0x8000, 0x18000]}
    assert _problems(data) == [
        "test.toml: (top level): not_available.i16[1]: 0x18000 does not fit in i16 "
        "(16 bits, at most 0xffff)"
    ]


def test_register_marker_wider_than_the_register_is_refused() -> None:
    data = _valid()
    data["quantities"]["power_w"] = {
        "address": 52,
        "type": "i32",
        "unit": "W",
        "not_available": [0x100000000],
    }
    assert _problems(data) == [
        "test.toml: (top level): quantities.power_w.not_available[0]: 0x100000000 does not "
        "fit in i32 (32 bits, at most 0xffffffff)"
    ]


def test_negative_marker_is_refused_with_the_value_to_write_instead() -> None:
    data = _valid()
    data["not_available"] = {"i16": [-32768]}
    assert _problems(data) == [
        "test.toml: (top level): not_available.i16[0]: -32768 is negative; write the value "
        "its registers hold, 0x8000"
    ]


def test_marker_for_a_float_type_is_refused() -> None:
    data = _valid()
    data["not_available"] = {"f32": [0x7FC00000]}
    assert _problems(data) == [
        "test.toml: (top level): not_available.f32: f32 registers take no markers "
        "(NaN is withheld anyway)"
    ]


def test_marker_given_as_text_is_refused() -> None:
    data = _valid()
    data["not_available"] = {"u16": ["0xFFFF"]}
    assert _problems(data) == [
        "test.toml: not_available.u16[0]: Input should be a valid integer (got '0xFFFF')"
    ]


def test_marker_of_the_wrong_width_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "acme-x1.toml"
    path.write_text(
        'id = "acme-x1"\nmanufacturer = "Acme"\nmodel = "X1"\n'
        'source = "Acme X1 Modbus manual rev 1"\n'
        "not_available = { u16 = [0xFFFFFFFF] }\n\n[quantities]\n"
        'frequency_hz = { address = 70, type = "u16", unit = "Hz", scale = 0.01 }\n'
    )
    with pytest.raises(ConfigError) as exc:
        load_file(path)
    assert exc.value.problems == [
        f"{path}: (top level): not_available.u16[0]: 0xffffffff does not fit in u16 "
        "(16 bits, at most 0xffff)"
    ]


# --- docs -------------------------------------------------------------------------------


def _table_rows(text: str) -> dict[str, list[str]]:
    rows = {}
    for line in text.splitlines():
        match = re.match(r"^\| `([^`]+)` \|(.*)\|$", line)
        if match:
            rows[match.group(1)] = [cell.strip() for cell in match.group(2).split("|")]
    return rows


def test_meters_doc_lists_every_model_with_its_limit_and_request_count() -> None:
    rows = _table_rows((ROOT / "docs" / "meters.md").read_text())
    assert sorted(rows) == IDS
    for model_id, cells in rows.items():
        meter = library()[model_id]
        limit, requests = cells[-2], cells[-1]
        assert int(limit) == meter.max_registers, model_id
        assert int(requests) == len(planner.plan(meter, meter.quantities)), model_id


def test_quantities_doc_lists_every_quantity_with_unit_and_kind() -> None:
    rows = _table_rows((ROOT / "docs" / "quantities.md").read_text())
    assert sorted(rows) == sorted(QUANTITIES)
    for name, (unit, kind, _meaning) in rows.items():
        assert unit == (QUANTITIES[name].unit or "(none)"), name
        assert kind == QUANTITIES[name].kind.value, name
