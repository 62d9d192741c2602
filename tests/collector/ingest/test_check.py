"""The readings validator: each rule, every hostile case, and a fuzz test that it never raises."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.ingest.check import Rejected, check
from collector.settings import Ingest
from sparwatt import wire
from tests.support.messages import (
    NOW_MS,
    REGISTRY,
    bad_cases,
    encoded,
    iso,
    payload,
    readings_topic,
)

RULES = Ingest(registration="registry", gateways=REGISTRY)  # type: ignore[arg-type]
KNOWN = {(g["site"], g["gateway"]) for g in REGISTRY}
READINGS_CASES = [c for c in bad_cases() if c.topic.endswith("/readings")]


def test_a_valid_batch_is_accepted_as_it_was_sent() -> None:
    raw = encoded(7, [("m1", NOW_MS, {"power_w": 1.5, "energy_import_kwh": 10.0})])

    message = check(readings_topic(), raw, RULES, KNOWN)

    assert isinstance(message, wire.ReadingsMessage)
    assert (message.site, message.gateway, message.seq) == ("site-a", "gw1", 7)
    assert message.readings[0].values == {"power_w": 1.5, "energy_import_kwh": 10.0}


@pytest.mark.parametrize("case", READINGS_CASES, ids=[c.name for c in READINGS_CASES])
def test_each_hostile_readings_message_is_rejected_with_its_precise_reason(case: Any) -> None:
    verdict = check(case.topic, case.payload, RULES, KNOWN)

    assert isinstance(verdict, Rejected), f"{case.name} was accepted"
    assert (verdict.reason, case.detail in verdict.detail) == (case.reason, True), verdict


def test_the_catalogue_has_at_least_thirty_kinds_with_distinct_payloads() -> None:
    cases = bad_cases()
    assert len(cases) >= 30
    assert len({(c.topic, c.payload) for c in cases}) == len(cases)


def test_time_limits_are_configurable() -> None:
    now = time.time()
    ahead = encoded(1, [("m1", int((now + 600) * 1000), {"power_w": 1.0})])
    old = encoded(1, [("m1", int((now - 3 * 86400) * 1000), {"power_w": 1.0})])
    strict = Ingest(max_future_s=60, max_past_days=2)
    lenient = Ingest(max_future_s=3600, max_past_days=30)

    assert isinstance(check(readings_topic(), ahead, strict, set(), now=now), Rejected)
    assert isinstance(check(readings_topic(), old, strict, set(), now=now), Rejected)
    assert isinstance(check(readings_topic(), ahead, lenient, set(), now=now), wire.ReadingsMessage)
    assert isinstance(check(readings_topic(), old, lenient, set(), now=now), wire.ReadingsMessage)


def test_auto_registration_accepts_unknown_gateways_and_registry_mode_does_not() -> None:
    raw = encoded(1, [("m1", NOW_MS, {"power_w": 1.0})], gateway="gw-new")
    topic = readings_topic(gateway="gw-new")

    assert isinstance(check(topic, raw, Ingest(), set()), wire.ReadingsMessage)
    assert check(topic, raw, RULES, KNOWN) == Rejected(
        "unknown_gateway", "site-a/gw-new is not in the collector's registry"
    )


def test_size_limits_are_configurable() -> None:
    raw = encoded(1, [("m1", NOW_MS + i, {"power_w": 1.0}) for i in range(20)])
    few = check(readings_topic(), raw, Ingest(max_readings_per_message=19), set())
    small = check(readings_topic(), raw, Ingest(max_payload_bytes=1024), set())
    assert isinstance(few, Rejected)
    assert isinstance(small, Rejected)
    assert (few.reason, small.reason) == ("too_many_readings", "payload_too_large")


# ---- fuzzing: whatever arrives, check() answers with a message or a precise reason

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = ["schema", "site", "gateway", "seq", "sent_at", "readings"]
READING_FIELDS = ["meter", "ts", "values"]


def _assert_sound(topic: str, raw: bytes, rules: Ingest = RULES) -> None:
    now = time.time()
    verdict = check(topic, raw, rules, KNOWN, now=now)
    if isinstance(verdict, Rejected):
        # an unexpected exception would surface as validator_error: none is allowed
        assert verdict.reason != "validator_error", verdict
        assert verdict.reason
        assert verdict.detail
        return
    assert isinstance(verdict, wire.ReadingsMessage)
    address = wire.parse_topic(topic)
    assert (verdict.site, verdict.gateway) == (address.site, address.gateway)
    assert (verdict.site, verdict.gateway) in KNOWN
    assert 1 <= len(verdict.readings) <= rules.max_readings_per_message
    for reading in verdict.readings:
        assert reading.ts.timestamp() <= now + rules.max_future_s
        assert all(q in wire.QUANTITIES and math.isfinite(v) for q, v in reading.values.items())


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300), st.text(max_size=60))
def test_fuzz_arbitrary_bytes_and_topics(raw: bytes, topic: str) -> None:
    _assert_sound(topic, raw)
    _assert_sound(readings_topic(), raw)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(JSON)
def test_fuzz_arbitrary_json_documents(document: Any) -> None:
    _assert_sound(readings_topic(), json.dumps(document).encode())


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(FIELDS + READING_FIELDS), JSON | st.datetimes().map(str), st.booleans())
def test_fuzz_one_field_of_a_valid_message_replaced(
    field: str, value: Any, into_values: bool
) -> None:
    body = payload(3, [("m1", NOW_MS, {"power_w": 1.0}), ("m2", NOW_MS, {"power_w": 2.0})])
    if field in FIELDS:
        body[field] = value
    elif into_values and isinstance(value, str):
        body["readings"][1]["values"][value] = 1.0
    else:
        body["readings"][1][field] = value
    _assert_sound(readings_topic(), json.dumps(body).encode())


@settings(max_examples=200)
@given(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
)
def test_fuzz_numbers_and_timestamps(seq: int, value: float, ts: str) -> None:
    body = payload(1, [("m1", NOW_MS, {"power_w": 1.0})])
    body["seq"] = seq
    body["readings"][0]["values"]["energy_import_kwh"] = value
    _assert_sound(readings_topic(), json.dumps(body).encode())
    body["readings"][0]["ts"] = ts or iso(NOW_MS)
    _assert_sound(readings_topic(), json.dumps(body).encode())
