"""The web application: wiring of API, pages and static files, and its server thread."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from collector.web import api, metrics, pages, programmes, remote
from collector.web.context import HERE, WebContext
from sparwatt.errors import ConfigError

log = logging.getLogger(__name__)


def create_app(ctx: WebContext) -> FastAPI:
    app = FastAPI(
        title="Sparwatt collector",
        version="1",
        description="Sites, meters, live values, interval series, opportunities, "
        "alerts and gateway status. Authenticate with "
        "`Authorization: Bearer <token>`.",
        docs_url=None,
        redoc_url=None,
    )
    app.state.ctx = ctx
    app.include_router(api.router)
    app.include_router(remote.router)
    app.include_router(pages.router)
    app.include_router(programmes.router)
    app.include_router(metrics.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Response:
        # scrapers and scripts get the status code, not the login page
        if request.url.path.startswith("/api/") or request.url.path == "/metrics":
            return JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)
        return pages.error_page(request, exc.status_code, str(exc.detail))

    @app.middleware("http")
    async def _headers(request: Request, call_next: Callable[[Request], Any]) -> Response:
        response: Response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            "frame-ancestors 'none'; form-action 'self'",
        )
        return response

    return app


class WebServer:
    """uvicorn on its own thread, beside the collector's ingest loop.

    The socket is bound here, on the caller's thread, so a taken port stops the collector
    at start-up with one clear line instead of a web thread dying quietly.
    """

    def __init__(self, ctx: WebContext, host: str, port: int) -> None:
        import uvicorn

        self.ctx = ctx
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.socket.bind((host, port))
        except OSError as exc:
            self.socket.close()
            raise ConfigError(
                [f"http: cannot listen on {host}:{port}: {exc.strerror or exc}"]
            ) from None
        self.address = f"http://{host}:{self.socket.getsockname()[1]}"
        config = uvicorn.Config(
            create_app(ctx), log_level="warning", access_log=False, timeout_graceful_shutdown=2
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, name="web", daemon=True
        )

    def start(self) -> None:
        self.thread.start()
        log.info("web pages and API on %s", self.address)

    def stop(self) -> None:
        self.ctx.hub.close()
        self.server.should_exit = True
        self.thread.join(timeout=5)
        self.socket.close()


def start_web(collector: Any) -> WebServer:
    """Hook for `Collector.run`: serve the web pages and feed them live readings."""
    http = collector.config.http
    ctx = WebContext(
        db=collector.config.storage.db,
        sites=collector.inputs.sites,
        secure_cookie=http.secure_cookie,
        sub_meters=frozenset(collector.config.evaluation.dedicated_meters),
        remote=collector.remote,
    )
    collector.listeners.append(ctx.hub.publish)
    server = WebServer(ctx, http.host, http.port)
    server.start()
    return server
