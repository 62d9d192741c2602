"""The gateway's side of remote management: config pushes and installer commands (read,
scan) from the admin, each answered on the requester's MQTT v5 Response Topic.

Requests arrive only on the gateway's own topics (the broker lets no one else read them and
only the admin write them). A config push is applied one at a time, in arrival order; a
command waits while a config is being switched, so it never meets a half-replaced poller.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from gateway import meter_maps, remote_config, scan
from gateway.publisher import Inbound
from gateway.settings import GatewayConfig
from sparwatt import wire
from sparwatt.errors import ConfigError, ReadError, WireError

if TYPE_CHECKING:
    from gateway.service import Gateway

log = logging.getLogger(__name__)

MAX_UNIT = 247


class Remote:
    """Answers the admin's requests for one running gateway."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        ident = gateway.config.gateway
        self.site, self.id = ident.site, ident.id
        self.config_topic = wire.config_set_topic(self.site, self.id)
        self.command_topic = wire.command_topic(self.site, self.id)
        self.lock = asyncio.Lock()  # a config switch, or one command at a time
        self._commands: set[asyncio.Task[None]] = set()

    @property
    def subscriptions(self) -> tuple[str, ...]:
        return (self.config_topic, self.command_topic)

    async def serve(self, inbound: asyncio.Queue[Inbound], stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                try:
                    msg = await asyncio.wait_for(inbound.get(), timeout=0.5)
                except TimeoutError:
                    continue
                if msg.retained:
                    # requests are never retained: an old one must not return on every connect
                    log.warning("ignoring a retained message on %s", msg.topic)
                elif msg.topic == self.config_topic:
                    await self._contained(self._config(msg), msg)
                elif msg.topic == self.command_topic:
                    task = asyncio.create_task(self._contained(self._command(msg), msg))
                    self._commands.add(task)
                    task.add_done_callback(self._commands.discard)
        finally:
            for task in list(self._commands):
                task.cancel()

    @staticmethod
    async def _contained(work: Coroutine[object, object, None], msg: Inbound) -> None:
        """One request that fails in an unforeseen way is logged; the next is served."""
        try:
            await work
        except Exception:
            log.exception("request on %s failed", msg.topic)

    # ---- config pushes

    async def _config(self, msg: Inbound) -> None:
        try:
            push = wire.decode(wire.ConfigPush, msg.payload)
        except WireError as err:
            log.warning("config push on %s refused: %s", msg.topic, err)
            result = self._result(False, "-", [f"config push: {err}"])
        else:
            result = await self.apply(push)
        payload = wire.encode(result)
        self._answer(msg, payload)
        # the latest outcome stays on the broker for anyone allowed to look
        self.gateway.publisher.publish(
            wire.config_result_topic(self.site, self.id), payload, retain=True
        )

    async def apply(self, push: wire.ConfigPush) -> wire.ConfigResult:
        gw = self.gateway
        if push.version == gw.config_version:
            return self._result(True, push.version, [])
        try:
            new = remote_config.check(push, gw.config)
        except ConfigError as exc:
            return self._refused(push, exc.problems)
        async with self.lock:
            old = gw.config
            try:
                await remote_config.switch(gw, new, push.source)
            except ConfigError as exc:
                return self._refused(push, exc.problems)
            except Exception as exc:  # the previous config polls again (see switch)
                log.exception("config %s could not start", push.version)
                return self._refused(push, [f"{push.source}: cannot start: {exc}"])
            problem = await self._keep(push, old)
            if problem:
                return self._refused(push, [problem])
        gw.config_version = push.version
        log.info(
            "config %s (%s) applied: %d meters on %d buses",
            push.version,
            push.source,
            len(new.meters),
            len(new.buses),
        )
        return self._result(True, push.version, [])

    async def _keep(self, push: wire.ConfigPush, old: GatewayConfig) -> str | None:
        """Write the running config to the file the gateway starts from; if that fails, go
        back to the previous config, so what runs is always what the next start runs."""
        path = self.gateway.config_path
        if path is None:
            return None
        try:
            remote_config.save(path, push.config)
        except OSError as exc:
            await remote_config.switch(self.gateway, old, str(path))
            return f"{path}: cannot save the new config ({exc.strerror or exc}); kept the previous"
        return None

    def _refused(self, push: wire.ConfigPush, problems: list[str]) -> wire.ConfigResult:
        log.warning(
            "config %s (%s) refused, %s keeps running:\n  %s",
            push.version,
            push.source,
            self.gateway.config_version,
            "\n  ".join(problems),
        )
        return self._result(False, push.version, problems)

    def _result(self, ok: bool, version: str, errors: list[str]) -> wire.ConfigResult:
        return wire.ConfigResult(
            site=self.site,
            gateway=self.id,
            ok=ok,
            version=version,
            running_version=self.gateway.config_version,
            errors=errors,
            ts=datetime.now(UTC),
        )

    # ---- installer commands

    async def _command(self, msg: Inbound) -> None:
        try:
            command = wire.decode(wire.Command, msg.payload)
        except WireError as err:
            log.warning("command on %s refused: %s", msg.topic, err)
            self._answer(msg, wire.encode(wire.Refused(error=f"command: {err}")))
            return
        async with self.lock:
            if command.command == "read":
                reply: wire.ReadReply | wire.ScanReply = await self._read(command)
            else:
                reply = await self._scan(command)
        self._answer(msg, wire.encode(reply))

    async def _read(self, command: wire.Command) -> wire.ReadReply:
        config, poller = self.gateway.config, self.gateway.poller
        name = command.meter or ""
        meter = next((m for m in config.meters if m.id == name), None)
        if meter is None:
            known = ", ".join(m.id for m in config.meters)
            return wire.ReadReply(ok=False, meter=name, error=f"no meter {name!r} (have: {known})")
        began = time.monotonic()
        mapped = meter_maps.library()[meter.model]
        try:
            result = await poller.readers[meter.id].read(
                poller.gates[meter.bus], meter.wanted(mapped)
            )
        except ReadError as err:
            return wire.ReadReply(ok=False, meter=name, error=str(err), latency_ms=_ms(began))
        return wire.ReadReply(
            ok=True,
            meter=name,
            values=result.values,
            unit={q: wire.QUANTITIES[q].unit for q in result.values},
            latency_ms=round(result.latency_s * 1000, 1),
            requests=result.requests,
            invalid=result.invalid,
        )

    async def _scan(self, command: wire.Command) -> wire.ScanReply:
        bus = command.bus or ""
        gate = self.gateway.poller.gates.get(bus)
        if gate is None:
            known = ", ".join(b.id for b in self.gateway.config.buses)
            return wire.ScanReply(ok=False, bus=bus, error=f"no bus {bus!r} (have: {known})")
        units = scan.units_of(command.units)
        if not units or units[0] < 1 or units[-1] > MAX_UNIT:
            return wire.ScanReply(ok=False, bus=bus, error=f"units: give 1-{MAX_UNIT}")
        began = time.monotonic()
        try:
            # through the bus's gate: the scan takes turns with the running polls
            found = await scan.probe(gate.read, units)
        except ReadError as err:
            return wire.ScanReply(ok=False, bus=bus, error=str(err), latency_ms=_ms(began))
        return wire.ScanReply(
            ok=True,
            bus=bus,
            found=[wire.ScanHit(unit=f["unit"], guess=f["guess"]) for f in found],
            latency_ms=_ms(began),
        )

    def _answer(self, msg: Inbound, payload: bytes) -> None:
        where = msg.response_topic
        if where is None:
            log.warning("request on %s names no response topic (MQTT v5 needed)", msg.topic)
            return
        if not where.startswith(wire.reply_prefix(self.site, self.id)):
            log.warning("request on %s wants its answer on %r, outside reply/", msg.topic, where)
            return
        with contextlib.suppress(ValueError):  # paho refuses a topic with wildcards
            self.gateway.publisher.reply(where, payload, msg.correlation)


def _ms(began: float) -> float:
    return round((time.monotonic() - began) * 1000, 1)
