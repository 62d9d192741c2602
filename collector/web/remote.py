"""Installer commands from the web: read one meter of a gateway now, through the broker.

Admins and consultants of the site may ask; a company sees its data but does not command
its gateway. The request goes out over the collector's own broker connection (MQTT v5
request/response, collector/ingest/remote.py) and the route waits for the answer.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from collector.web import auth, models
from collector.web.access import SiteId, visible_site
from collector.web.api import Caller
from collector.web.context import ctx_of
from sparwatt import wire
from sparwatt.errors import RemoteError

READ_TIMEOUT_S = 10.0

router = APIRouter(prefix="/api", tags=["remote"])
GatewayId = Annotated[str, Path(pattern=wire.ID_PATTERN, description="gateway id")]
MeterId = Annotated[str, Path(pattern=wire.ID_PATTERN, description="meter id")]


class RemoteRead(BaseModel):
    """One meter read now. `latency_ms`: how long the meter took to answer the gateway, or,
    when the gateway did not answer, how long the collector waited."""

    model_config = ConfigDict(extra="forbid")
    ok: bool
    values: dict[str, float]
    unit: dict[str, str]
    error: str | None
    latency_ms: float


@router.post(
    "/sites/{site}/gateways/{gateway}/meters/{meter}/read",
    response_model=RemoteRead,
    responses={
        401: {"model": models.Problem, "description": "no valid token"},
        403: {"model": models.Problem, "description": "a company token"},
        404: {"model": models.Problem, "description": "no such site or gateway, or not yours"},
        503: {"model": models.Problem, "description": "the collector has no broker link"},
        504: {"model": RemoteRead, "description": "the gateway did not answer in time"},
    },
)
def read_meter(
    request: Request, who: Caller, site: SiteId, gateway: GatewayId, meter: MeterId
) -> RemoteRead | JSONResponse:
    """Read one meter of a gateway now, as `sparwatt-gateway read` would on site."""
    ctx = ctx_of(request)
    visible_site(ctx, who, site)
    if who.role not in (auth.Role.ADMIN, auth.Role.CONSULTANT):
        raise HTTPException(403, "reading meters remotely is for admins and consultants")
    if gateway not in {row.gateway for row in ctx.reader().gateways_of(site)}:
        raise HTTPException(404, "gateway not found")
    if ctx.remote is None or not ctx.remote.connected:
        raise HTTPException(503, "the collector is not connected to the broker")
    began = time.monotonic()
    try:
        reply = ctx.remote.read_meter(site, gateway, meter, READ_TIMEOUT_S)
    except RemoteError as err:
        waited = round((time.monotonic() - began) * 1000, 1)
        body = RemoteRead(ok=False, values={}, unit={}, error=str(err), latency_ms=waited)
        return JSONResponse(body.model_dump(), status_code=504)
    return RemoteRead(
        ok=reply.ok,
        values=reply.values,
        unit=reply.unit,
        error=reply.error,
        latency_ms=reply.latency_ms,
    )
