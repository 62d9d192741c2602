"""Builders shared by the collector tests: wire messages and configs (no tests here)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from collector.settings import CollectorConfig
from collector.store.sql import Target
from sparwatt import wire
from tests.support.engines import victoria_of

NOW_MS = (int(time.time() * 1000) // 900_000) * 900_000 - 24 * 3_600_000  # a quarter, a day ago


def iso(ms: int) -> str:
    return wire.format_ts(datetime.fromtimestamp(ms / 1000, UTC))


def payload(
    seq: int,
    items: list[tuple[str, int, dict[str, Any]]],
    site: str = "site-a",
    gateway: str = "gw1",
    **override: Any,
) -> dict[str, Any]:
    """A readings batch as a JSON-ready dict: items are (meter, ts ms, values)."""
    body: dict[str, Any] = {
        "schema": 1,
        "site": site,
        "gateway": gateway,
        "seq": seq,
        "sent_at": iso(max(ts for _m, ts, _v in items) if items else NOW_MS),
        "readings": [{"meter": m, "ts": iso(ts), "values": v} for m, ts, v in items],
    }
    body.update(override)
    return body


def encoded(seq: int, readings: list[tuple[str, int, dict[str, Any]]], **kw: Any) -> bytes:
    return json.dumps(payload(seq, readings, **kw)).encode()


def message(
    seq: int,
    readings: list[tuple[str, int, dict[str, Any]]],
    site: str = "site-a",
    gateway: str = "gw1",
) -> wire.ReadingsMessage:
    return wire.ReadingsMessage.model_validate(payload(seq, readings, site, gateway))


def config(db: Target, **sections: dict[str, Any]) -> CollectorConfig:
    storage: dict[str, Any] = {"db": str(db)}
    if (victoria := victoria_of(db)) is not None:  # as the database says
        storage["victoria"] = victoria.model_dump()
    data: dict[str, Any] = {"storage": storage, **sections}
    return CollectorConfig.model_validate(data)


def readings_topic(site: str = "site-a", gateway: str = "gw1") -> str:
    return wire.topic(site, gateway, "readings")


# ---- the hostile catalogue: every kind of bad message and the reason it must get

REGISTRY = [{"site": "site-a", "gateway": "gw1"}, {"site": "site-b", "gateway": "gw1"}]


@dataclass(frozen=True)
class BadCase:
    name: str
    topic: str
    payload: bytes
    reason: str
    detail: str  # must appear in the quarantine detail


def _good(**override: Any) -> dict[str, Any]:
    body = payload(900, [("m1", NOW_MS, {"power_w": 1.0})])
    body.update(override)
    return body


def _reading(**override: Any) -> bytes:
    entry: dict[str, Any] = {"meter": "m1", "ts": iso(NOW_MS), "values": {"power_w": 1.0}}
    entry.update(override)
    return json.dumps(_good(readings=[entry])).encode()


def _value(raw: str) -> bytes:
    """A message whose power_w is the literal JSON text raw (NaN and friends)."""
    return json.dumps(_good()).replace('"power_w": 1.0', f'"power_w": {raw}').encode()


def _dump(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


def _without(key: str) -> bytes:
    body = _good()
    del body[key]
    return _dump(body)


def bad_cases() -> list[BadCase]:
    t = readings_topic()
    day_ms = 86_400_000
    now_ms = int(time.time() * 1000)
    sql = "m1'); DROP TABLE reading;--"
    many = payload(900, [("m1", NOW_MS + i, {"power_w": 1.0}) for i in range(6000)])
    mixed = payload(900, [("m1", NOW_MS + i * 1000, {"power_w": 1.0}) for i in range(5)])
    mixed_text = json.dumps(mixed)
    cut = mixed_text.rindex('"power_w": 1.0')
    mixed_bad = (mixed_text[:cut] + '"power_w": NaN' + mixed_text[cut + 14 :]).encode()
    return [
        BadCase("truncated json", t, _dump(_good())[:40], "invalid_json", "Invalid JSON"),
        BadCase("empty payload", t, b"", "invalid_json", "EOF"),
        BadCase("not utf-8", t, b"\xff\xfe\x00{", "invalid_json", "Invalid JSON"),
        BadCase("json array", t, b"[1, 2]", "invalid_value", "should be an object"),
        BadCase("json string", t, b'"readings"', "invalid_value", "should be an object"),
        BadCase("json null", t, b"null", "invalid_value", "should be an object"),
        BadCase("nesting bomb", t, b"[" * 5000 + b"]" * 5000, "invalid_json", "recursion"),
        BadCase("schema 2", t, _dump(_good(schema=2)), "unsupported_schema", "schema"),
        BadCase("schema as text", t, _dump(_good(schema="one")), "unsupported_schema", "schema"),
        BadCase("site missing", t, _without("site"), "missing_field", "site"),
        BadCase("readings missing", t, _without("readings"), "missing_field", "readings"),
        BadCase("unknown field", t, _dump(_good(extra=1)), "unknown_field", "extra"),
        BadCase(
            "unknown reading field", t, _reading(unit="kW"), "unknown_field", "readings.0.unit"
        ),
        BadCase("negative seq", t, _dump(_good(seq=-1)), "invalid_value", "seq"),
        BadCase("fractional seq", t, _dump(_good(seq=1.5)), "invalid_value", "seq"),
        BadCase("seq beyond 64 bits", t, _dump(_good(seq=10**30)), "seq_out_of_range", "exceeds"),
        BadCase("seq as object", t, _dump(_good(seq={})), "invalid_value", "seq"),
        BadCase("no readings", t, _dump(_good(readings=[])), "empty", "readings"),
        BadCase(
            "readings not a list", t, _dump(_good(readings="all")), "invalid_value", "readings"
        ),
        BadCase("no values", t, _reading(values={}), "empty", "readings.0.values"),
        BadCase(
            "value is text",
            t,
            _reading(values={"power_w": "abc"}),
            "invalid_value",
            "readings.0.values.power_w",
        ),
        BadCase(
            "number as text",
            t,
            _reading(values={"power_w": "12"}),
            "invalid_value",
            "readings.0.values.power_w",
        ),
        BadCase(
            "number as boolean",
            t,
            _reading(values={"power_w": True}),
            "invalid_value",
            "readings.0.values.power_w",
        ),
        BadCase("seq as text", t, _dump(_good(seq="5")), "invalid_value", "seq"),
        BadCase("seq as boolean", t, _dump(_good(seq=True)), "invalid_value", "seq"),
        BadCase(
            "timestamp as epoch number",
            t,
            _reading(ts=1_764_165_600),
            "invalid_value",
            "readings.0.ts",
        ),
        BadCase(
            "value is null",
            t,
            _reading(values={"power_w": None}),
            "invalid_value",
            "readings.0.values.power_w",
        ),
        BadCase(
            "value is a list",
            t,
            _reading(values={"power_w": [1]}),
            "invalid_value",
            "readings.0.values.power_w",
        ),
        BadCase("NaN", t, _value("NaN"), "not_finite", "readings.0.values.power_w"),
        BadCase("Infinity", t, _value("Infinity"), "not_finite", "readings.0.values.power_w"),
        BadCase("-Infinity", t, _value("-Infinity"), "not_finite", "power_w"),
        BadCase("overflowing number", t, _value("1e400"), "not_finite", "power_w"),
        BadCase(
            "NaN in the last of five readings",
            t,
            mixed_bad,
            "not_finite",
            "readings.4.values.power_w",
        ),
        BadCase(
            "unknown quantity",
            t,
            _reading(values={"power_kw": 1.0}),
            "unknown_quantity",
            "power_kw",
        ),
        BadCase("unicode meter id", t, _reading(meter="zähler"), "bad_id", "readings.0.meter"),
        BadCase("SQL-looking meter id", t, _reading(meter=sql), "bad_id", "readings.0.meter"),
        BadCase("empty meter id", t, _reading(meter=""), "bad_id", "readings.0.meter"),
        BadCase("overlong meter id", t, _reading(meter="m" * 200), "bad_id", "meter"),
        BadCase("NUL in meter id", t, _reading(meter="m\u0000"), "bad_id", "meter"),
        BadCase(
            "unicode site id", readings_topic("sité"), _dump(_good(site="sité")), "bad_id", "site"
        ),
        BadCase(
            "SQL-looking site id",
            readings_topic("x';DROP TABLE gap;--"),
            _dump(_good(site="x';DROP TABLE gap;--")),
            "bad_id",
            "site",
        ),
        BadCase(
            "payload site differs from topic",
            t,
            _dump(_good(site="site-b")),
            "identity_mismatch",
            "topic says site-a/gw1",
        ),
        BadCase(
            "payload gateway differs from topic",
            t,
            _dump(_good(gateway="gw2")),
            "identity_mismatch",
            "payload says site-a/gw2",
        ),
        BadCase(
            "gateway not in the registry",
            readings_topic(gateway="gw9"),
            _dump(_good(gateway="gw9")),
            "unknown_gateway",
            "site-a/gw9",
        ),
        BadCase(
            "a day in the future",
            t,
            _reading(ts=iso(now_ms + day_ms)),
            "future_timestamp",
            "ahead of the collector clock",
        ),
        BadCase(
            "25 years old", t, _reading(ts="2001-01-01T00:00:00Z"), "stale_timestamp", "older than"
        ),
        BadCase(
            "naive timestamp",
            t,
            _reading(ts="2026-11-26T14:00:00"),
            "naive_timestamp",
            "readings.0.ts",
        ),
        BadCase(
            "timestamp is prose", t, _reading(ts="yesterday"), "invalid_value", "readings.0.ts"
        ),
        BadCase(
            "timestamp at the calendar's edge",
            t,
            _reading(ts="0001-01-01T00:00:00+23:59"),
            "out_of_range",
            "OverflowError",
        ),
        BadCase("6000 readings in one batch", t, _dump(many), "too_many_readings", "6000"),
        BadCase(
            "10 MB payload",
            t,
            b'{"schema": 1, "pad": "' + b"x" * 10_000_000 + b'"}',
            "payload_too_large",
            "limit",
        ),
        BadCase(
            "status with an unknown state",
            wire.topic("site-a", "gw1", "status"),
            b'{"schema": 1, "state": "exploded"}',
            "invalid_value",
            "status: state",
        ),
        BadCase(
            "health that is not an object",
            wire.topic("site-a", "gw1", "health"),
            b"[1, 2, 3]",
            "invalid_value",
            "not a JSON object",
        ),
        BadCase(
            "status of a gateway not in the registry",
            wire.topic("site-z", "gw1", "status"),
            b'{"schema": 1, "state": "online"}',
            "unknown_gateway",
            "site-z/gw1",
        ),
    ]


def good_stream(
    count: int, first_seq: int = 1, meter: str = "m1", values: int = 2
) -> list[tuple[str, bytes]]:
    """count valid batches of site-a/gw1, one reading each, distinct times and seqs."""
    names = ["power_w", "energy_import_kwh", "energy_export_kwh", "voltage_l1_v"][:values]
    out = []
    for k in range(count):
        seq = first_seq + k
        ts = NOW_MS + seq * 1000
        out.append((readings_topic(), encoded(seq, [(meter, ts, {q: float(seq) for q in names})])))
    return out
