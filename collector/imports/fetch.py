"""Eloverblik's API: a refresh token buys a data access token, which fetches metering-point
time series, ten points per request. Answers are saved as they come; `import` reads them."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

from sparwatt.backoff import backoff_s
from sparwatt.errors import ConfigError

API_URL = "https://api.eloverblik.dk"
POINTS_PER_REQUEST = 10  # the API's limit
MAX_DAYS = 730  # the longest period one request may ask for
AGGREGATIONS = ("Actual", "Quarter", "Hour")
BUSY = (429, 503)  # too many requests, or the service is overloaded: wait and ask again
ATTEMPTS = 8


class FetchError(ConfigError):
    """The API refused or kept failing; one line saying which request and why."""

    def __init__(self, reason: str) -> None:
        super().__init__([f"eloverblik: {reason}"])


def periods(first: dt.date, last: dt.date) -> Iterator[tuple[dt.date, dt.date]]:
    """[from, to) spans of at most MAX_DAYS covering [first, last)."""
    start = first
    while start < last:
        end = min(last, start + dt.timedelta(days=MAX_DAYS))
        yield start, end
        start = end


def fetch(
    refresh_token: str,
    points: list[str],
    first: dt.date,
    last: dt.date,
    out_dir: Path,
    *,
    aggregation: str = "Quarter",
    api: str = "thirdpartyapi",
    base_url: str = API_URL,
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Path]:
    """Save the time series of `points` over [first, last) as JSON files in `out_dir`;
    returns them in order."""
    if aggregation not in AGGREGATIONS:
        raise FetchError(f"aggregation {aggregation!r}: one of {', '.join(AGGREGATIONS)}")
    http = client or httpx.Client(timeout=120.0)
    root = f"{base_url.rstrip('/')}/{api}/api"
    try:
        access = _token(http, root, refresh_token, sleep)
        out_dir.mkdir(parents=True, exist_ok=True)
        saved = []
        for a, b in periods(first, last):
            for k in range(0, len(points), POINTS_PER_REQUEST):
                group = points[k : k + POINTS_PER_REQUEST]
                url = f"{root}/meterdata/gettimeseries/{a}/{b}/{aggregation}"
                body = {"meteringPoints": {"meteringPoint": group}}
                answer = _ask(http, "POST", url, access, sleep, json=body)
                path = out_dir / f"eloverblik-{a}-{b}-{k // POINTS_PER_REQUEST + 1}.json"
                path.write_text(json.dumps(answer))
                saved.append(path)
        return saved
    finally:
        if client is None:
            http.close()


def _token(
    http: httpx.Client, root: str, refresh_token: str, sleep: Callable[[float], None]
) -> str:
    answer = _ask(http, "GET", f"{root}/token", refresh_token.strip(), sleep)
    token = answer.get("result") if isinstance(answer, dict) else None
    if not isinstance(token, str) or not token:
        raise FetchError("the token endpoint answered without a data access token")
    return token


def _ask(
    http: httpx.Client,
    method: str,
    url: str,
    bearer: str,
    sleep: Callable[[float], None],
    json: object = None,
) -> dict[str, object]:
    """One request, asked again while the API is busy (Retry-After, else backoff)."""
    headers = {"Authorization": f"Bearer {bearer}", "Accept": "application/json"}
    for attempt in range(ATTEMPTS):
        try:
            resp = http.request(method, url, headers=headers, json=json)
        except httpx.HTTPError as exc:
            raise FetchError(f"{method} {url}: {exc}") from None
        if resp.status_code in BUSY:
            wait = resp.headers.get("Retry-After", "")
            sleep(float(wait) if wait.isdigit() else backoff_s(attempt, 2.0, 120.0))
            continue
        if resp.status_code == 401:
            raise FetchError(f"{method} {url}: 401, the token is not accepted (expired?)")
        if resp.status_code >= 400:
            raise FetchError(f"{method} {url}: HTTP {resp.status_code} {resp.text[:200]}")
        try:
            body = resp.json()
        except ValueError:
            raise FetchError(f"{method} {url}: the answer is not JSON") from None
        if not isinstance(body, dict):
            raise FetchError(f"{method} {url}: the answer is not a JSON object")
        return body
    raise FetchError(f"{method} {url}: still busy after {ATTEMPTS} attempts")
