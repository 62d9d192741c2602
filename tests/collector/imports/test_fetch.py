"""fetch-eloverblik against a local server answering in the API's documented shape: token
exchange, ten points per request, waiting when busy, and files `import` reads."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from collector.cli.main import main
from collector.store import Reader

REFRESH, ACCESS = "refresh-abc", "access-xyz"
POINTS = [f"5713131804000{i:05d}" for i in range(12)]


class Api(BaseHTTPRequestHandler):
    calls: ClassVar[list[tuple[str, str, Any]]] = []
    busy_left = 1

    def log_message(self, *_: object) -> None:
        pass

    def _send(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        Api.calls.append(("GET", self.path, None))
        if (
            self.path == "/thirdpartyapi/api/token"
            and self.headers["Authorization"] == f"Bearer {REFRESH}"
        ):
            self._send(200, {"result": ACCESS})
        else:
            self._send(401, {"error": "no"})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Api.calls.append(("POST", self.path, body))
        if self.headers["Authorization"] != f"Bearer {ACCESS}":
            self._send(401, {})
            return
        if Api.busy_left:
            Api.busy_left -= 1
            self._send(429, {}, {"Retry-After": "0"})
            return
        points = body["meteringPoints"]["meteringPoint"]
        self._send(200, {"result": [document(p) for p in points]})


def document(gsrn: str) -> dict[str, object]:
    return {
        "MyEnergyData_MarketDocument": {
            "TimeSeries": [
                {
                    "mRID": gsrn,
                    "measurement_Unit.name": "KWH",
                    "MarketEvaluationPoint": {"mRID": {"codingScheme": "A10", "name": gsrn}},
                    "Period": [
                        {
                            "resolution": "PT1H",
                            "timeInterval": {
                                "start": "2025-12-31T23:00:00Z",
                                "end": "2026-01-01T23:00:00Z",
                            },
                            "Point": [
                                {
                                    "position": str(k + 1),
                                    "out_Quantity.quantity": f"{k}.5",
                                    "out_Quantity.quality": "A04",
                                }
                                for k in range(24)
                            ],
                        }
                    ],
                }
            ]
        },
        "success": True,
        "errorCode": 10000,
    }


@pytest.fixture
def api() -> Iterator[str]:
    Api.calls, Api.busy_left = [], 1
    server = ThreadingHTTPServer(("127.0.0.1", 0), Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_points_are_fetched_ten_at_a_time_after_a_busy_answer_and_import_cleanly(
    api: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "token").write_text(REFRESH + "\n")
    argv = ["fetch-eloverblik", "--token-file", str(tmp_path / "token"), "--from", "2026-01-01",
            "--to", "2026-01-02", "--aggregation", "Hour", "--out", str(tmp_path / "dl"),
            "--url", api, "--json"]  # fmt: skip
    for p in POINTS:
        argv += ["--point", p]
    assert main(argv) == 0
    saved = [Path(p) for p in json.loads(capsys.readouterr().out)]
    assert [p.name for p in saved] == [
        "eloverblik-2026-01-01-2026-01-02-1.json", "eloverblik-2026-01-01-2026-01-02-2.json"
    ]  # fmt: skip
    posts = [c for c in Api.calls if c[0] == "POST"]
    assert [len(c[2]["meteringPoints"]["meteringPoint"]) for c in posts] == [10, 10, 2]
    assert posts[0][1] == "/thirdpartyapi/api/meterdata/gettimeseries/2026-01-01/2026-01-02/Hour"

    sites = tmp_path / "sites.toml"
    sites.write_text(
        "[sites.a.metering_points]\n"
        + "".join(f'"{p}" = {{ meter = "m{p[-2:]}" }}\n' for p in POINTS)
    )
    assert (
        main(["import", "--db", str(tmp_path / "c.db"), "--sites", str(sites), *map(str, saved)])
        == 0
    )
    with Reader(tmp_path / "c.db") as reader:
        total = sum(i.energy_kwh or 0 for i in reader.intervals("a", 0, 2**62))
    assert total == pytest.approx(len(POINTS) * sum(k + 0.5 for k in range(24)))


def test_a_refused_refresh_token_is_one_clear_line(
    api: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "token").write_text("wrong")
    argv = ["fetch-eloverblik", "--token-file", str(tmp_path / "token"), "--from",
            "2026-01-01", "--to", "2026-01-02", "--point", POINTS[0], "--url", api,
            "--out", str(tmp_path)]  # fmt: skip
    assert main(argv) == 2
    assert "401, the token is not accepted" in capsys.readouterr().err
