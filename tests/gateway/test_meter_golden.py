"""Each meter model turns the register words its manufacturer documents into the documented
reading, decoded the way the gateway decodes a real response."""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway import decode
from gateway.meter_maps import GoldenCase, MeterMap, load_file
from sparwatt.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted((ROOT / "gateway" / "meterlib").glob("*.toml"))
MODELS = {path.stem: load_file(path) for path in FILES}
CASES = [
    (model_id, index) for model_id, meter in MODELS.items() for index in range(len(meter.golden))
]

# None: the gateway withholds the quantity as implausible rather than publishing it.
Reading = float | None
Decoder = Callable[[MeterMap, GoldenCase], Reading]


def _registers(meter: MeterMap, case: GoldenCase) -> tuple[str, dict[int, int]]:
    """The case's words at the addresses the map reads them from, scale register included."""
    fld = meter.quantities[case.quantity]
    regs = dict(zip(range(fld.address, fld.address + fld.words), case.words, strict=True))
    if fld.scale_register is not None:
        assert case.scale_word is not None
        regs[fld.scale_register] = case.scale_word
    return meter.field_function(case.quantity), regs


def by_fields(meter: MeterMap, case: GoldenCase) -> Reading:
    """The reader's path for a round whose registers arrived as words by address."""
    function, regs = _registers(meter, case)
    words: dict[str, dict[int, int]] = {"input": {}, "holding": {}, function: regs}
    values, _ = decode.decode_fields(decode.compile_fields(meter, [case.quantity]), words)
    return values.get(case.quantity)


def by_plan(meter: MeterMap, case: GoldenCase) -> Reading:
    """The reader's fast path: unpacking straight from the bytes of one read response."""
    function, regs = _registers(meter, case)
    start = min(regs)
    block = [regs.get(address, 0) for address in range(start, max(regs) + 1)]
    placed = decode.place_fields(meter, [case.quantity], [(function, start, len(block))])
    assert placed is not None
    values, _ = decode.decode_placed(placed, [struct.pack(f">{len(block)}H", *block)])
    return values.get(case.quantity)


DECODERS: dict[str, Decoder] = {"decode_fields": by_fields, "decode_placed": by_plan}


def agrees(got: Reading, case: GoldenCase) -> bool:
    if case.invalid:
        return got is None
    assert case.value is not None
    return got is not None and math.isclose(got, case.value, rel_tol=1e-6)


def mismatches(meter: MeterMap) -> list[str]:
    out = []
    for index, case in enumerate(meter.golden):
        for path, decoder in DECODERS.items():
            got = decoder(meter, case)
            if not agrees(got, case):
                want = "invalid" if case.invalid else case.value
                out.append(
                    f"golden[{index}] {case.quantity} via {path}: got {got}, "
                    f"the document says {want} ({case.source})"
                )
    return out


@pytest.mark.parametrize(
    ("model_id", "index"), CASES, ids=[f"{m}[{i}]-{MODELS[m].golden[i].quantity}" for m, i in CASES]
)
def test_documented_register_words_decode_to_the_documented_reading(
    model_id: str, index: int
) -> None:
    meter = MODELS[model_id]
    case = meter.golden[index]
    for path, decoder in DECODERS.items():
        got = decoder(meter, case)
        want = "invalid" if case.invalid else case.value
        assert agrees(got, case), f"{path}: got {got}, {case.source} says {want}"


@pytest.mark.parametrize("model_id", MODELS)
def test_every_shipped_model_has_at_least_three_golden_cases(model_id: str) -> None:
    assert len(MODELS[model_id].golden) >= 3


def _encoding(meter: MeterMap, name: str) -> tuple[str, str, str, float, bool]:
    fld = meter.quantities[name]
    return (
        fld.type,
        fld.word_order or meter.word_order,
        fld.byte_order or meter.byte_order,
        decode.factor(fld),
        fld.scale_register is not None,
    )


@pytest.mark.parametrize("model_id", MODELS)
def test_golden_cases_cover_every_type_order_and_scale_the_model_uses(model_id: str) -> None:
    meter = MODELS[model_id]
    used = {_encoding(meter, name) for name in meter.quantities}
    covered = {_encoding(meter, case.quantity) for case in meter.golden if not case.invalid}
    assert not used - covered, f"no golden case reads {sorted(used - covered)}"


# --- the cases can fail ---------------------------------------------------------------------


def _flipped_word_order(meter: MeterMap) -> MeterMap:
    flip = {"big": "little", "little": "big"}
    quantities = {
        name: fld.model_copy(update={"word_order": flip[fld.word_order or meter.word_order]})
        for name, fld in meter.quantities.items()
    }
    return meter.model_copy(update={"word_order": flip[meter.word_order], "quantities": quantities})


def _scaled_tenfold(meter: MeterMap) -> MeterMap:
    quantities = {
        name: fld.model_copy(update={"scale": fld.scale * 10})
        for name, fld in meter.quantities.items()
    }
    return meter.model_copy(update={"quantities": quantities})


@pytest.mark.parametrize("model_id", MODELS)
def test_a_map_with_its_word_order_flipped_fails_its_golden_cases(model_id: str) -> None:
    assert mismatches(_flipped_word_order(MODELS[model_id]))


@pytest.mark.parametrize("model_id", MODELS)
def test_a_map_whose_scale_is_ten_times_off_fails_its_golden_cases(model_id: str) -> None:
    assert mismatches(_scaled_tenfold(MODELS[model_id]))


# --- malformed cases are refused, naming the file ----------------------------------------------

MAP = """id = "acme-x1"
manufacturer = "Acme"
model = "X1"
source = "Acme X1 Modbus manual rev 1"

[quantities]
power_w = { address = 52, register = 30053, type = "f32", unit = "W" }
energy_import_kwh = { address = 72, register = 30073, type = "f32", unit = "kWh" }

[[golden]]
"""
GOOD = {
    "quantity": '"power_w"',
    "words": "[0x4370, 0x8000]",
    "value": "240.5",
    "source": '"Acme X1 Modbus manual rev 1, example 3"',
}


def _problems(tmp_path: Path, **keys: str | None) -> tuple[Path, list[str]]:
    """Problems of a file whose one golden case is GOOD with these keys changed (None drops)."""
    case = {**GOOD, **keys}
    path = tmp_path / "acme-x1.toml"
    path.write_text(MAP + "".join(f"{k} = {v}\n" for k, v in case.items() if v is not None))
    with pytest.raises(ConfigError) as exc:
        load_file(path)
    return path, exc.value.problems


def test_a_well_formed_golden_case_loads(tmp_path: Path) -> None:
    path = tmp_path / "acme-x1.toml"
    path.write_text(MAP + "".join(f"{k} = {v}\n" for k, v in GOOD.items()))
    (case,) = load_file(path).golden
    assert case.words == [0x4370, 0x8000]
    assert case.value == 240.5


def test_golden_case_with_an_unknown_key_is_refused(tmp_path: Path) -> None:
    path, problems = _problems(tmp_path, expected="240.5")
    assert problems == [f"{path}: golden[0].expected: Extra inputs are not permitted (got 240.5)"]


def test_golden_case_for_a_quantity_the_model_lacks_is_refused(tmp_path: Path) -> None:
    path, problems = _problems(tmp_path, quantity='"voltage_l1_v"')
    assert problems == [
        f"{path}: (top level): golden[0].quantity: 'voltage_l1_v' is not a quantity of this model"
    ]


def test_golden_case_with_too_few_words_for_the_register_type_is_refused(tmp_path: Path) -> None:
    path, problems = _problems(tmp_path, words="[0x4370]")
    assert problems == [
        f"{path}: (top level): golden[0].words: power_w is f32, which takes 2 words, got 1"
    ]


def test_golden_case_with_too_many_words_for_the_register_type_is_refused(tmp_path: Path) -> None:
    path, problems = _problems(tmp_path, words="[0x0000, 0x4370, 0x8000]")
    assert problems == [
        f"{path}: (top level): golden[0].words: power_w is f32, which takes 2 words, got 3"
    ]


def test_golden_word_wider_than_a_register_is_refused(tmp_path: Path) -> None:
    path, problems = _problems(tmp_path, words="[0x4370, 0x18000]")
    assert problems == [
        f"{path}: golden[0].words[1]: Input should be less than or equal to 65535 (got 98304)"
    ]


def test_golden_word_given_as_text_is_refused(tmp_path: Path) -> None:
    path, problems = _problems(tmp_path, words='["0x4370", 0x8000]')
    assert problems == [
        f"{path}: golden[0].words[0]: Input should be a valid integer (got '0x4370')"
    ]


def test_golden_case_without_an_outcome_is_refused(tmp_path: Path) -> None:
    path, problems = _problems(tmp_path, value=None)
    assert problems == [f"{path}: golden[0]: give the expected value, or invalid = true"]


def test_golden_case_with_both_value_and_invalid_is_refused(tmp_path: Path) -> None:
    path, problems = _problems(tmp_path, invalid="true")
    assert problems == [f"{path}: golden[0]: value and invalid = true exclude each other"]


def test_golden_case_without_a_source_is_refused(tmp_path: Path) -> None:
    path, problems = _problems(tmp_path, source=None)
    assert problems == [f"{path}: golden[0].source: Field required"]


def test_golden_scale_word_for_a_quantity_without_scale_register_is_refused(tmp_path: Path) -> None:
    path, problems = _problems(tmp_path, scale_word="0xFFFF")
    assert problems == [f"{path}: (top level): golden[0].scale_word: power_w has no scale_register"]


def test_golden_case_of_a_scaled_quantity_needs_its_scale_word(tmp_path: Path) -> None:
    path = tmp_path / "acme-x1.toml"
    path.write_text(
        MAP.replace(
            'power_w = { address = 52, register = 30053, type = "f32"',
            'power_w = { address = 52, scale_register = 60, type = "i16"',
        )
        + 'quantity = "power_w"\nwords = [0xFB2E]\nvalue = -123.4\n'
        'source = "Acme X1 Modbus manual rev 1, example 4"\n'
    )
    with pytest.raises(ConfigError) as exc:
        load_file(path)
    assert exc.value.problems == [
        f"{path}: (top level): golden[0].scale_word: power_w is "
        "scaled by register 60; give that register's word"
    ]
