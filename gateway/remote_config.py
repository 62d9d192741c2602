"""Remote configuration: check a pushed config, switch the running gateway over, keep it.

A push is validated exactly as `sparwatt-gateway check-config` validates a file, plus what
only a running gateway can judge: the config must be for this gateway, and [gateway] and
[mqtt] must stay as they are, since a mistake there would cut the gateway off from the only
channel that could fix it (so must `outbox.max_inflight`, which paho fixes per connection).
The switch keeps the outbox and pending readings; only the poller (and with it the buses) is
replaced. The file is written after the new poller runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.poller import Poller
from gateway.settings import GatewayConfig
from sparwatt import configfile, wire
from sparwatt.errors import ConfigError

if TYPE_CHECKING:
    from gateway.service import Gateway

log = logging.getLogger(__name__)


def version_of(path: Path | None) -> str | None:
    """The version of the config file a gateway started from (None without one)."""
    if path is None:
        return None
    try:
        return wire.config_version(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return None


def check(push: wire.ConfigPush, running: GatewayConfig) -> GatewayConfig:
    """The pushed config, validated; ConfigError with check-config's lines otherwise."""
    source = push.source
    if wire.config_version(push.config) != push.version:
        raise ConfigError([f"{source}: version {push.version} does not match the text sent"])
    data = configfile.parse_toml(push.config, source)
    ident = running.gateway
    table = data.get("gateway")
    named = (table.get("site"), table.get("id")) if isinstance(table, dict) else (None, None)
    if None not in named and named != (ident.site, ident.id):
        # checked first: a config for another gateway is not this gateway's to judge
        # (one naming no gateway fails the validation below)
        raise ConfigError(
            [
                f"{source}: gateway: this config is for {named[0]}/{named[1]}, "
                f"not for this gateway ({ident.site}/{ident.id}); ignored"
            ]
        )
    new = configfile.validate(GatewayConfig, data, source, base_dir=Path(source).parent)
    problems = []
    if new.gateway != ident:
        problems.append(
            f"{source}: gateway.state_dir: cannot be changed remotely "
            f"(running: {str(ident.state_dir)!r}); change it on site"
        )
    if new.mqtt != running.mqtt:
        problems.append(
            f"{source}: mqtt: cannot be changed remotely (a mistake would cut the gateway "
            "off from the broker); change it on site"
        )
    if new.outbox.max_inflight != running.outbox.max_inflight:
        problems.append(
            f"{source}: outbox.max_inflight: cannot be changed while connected "
            f"(running: {running.outbox.max_inflight}); change it on site"
        )
    if problems:
        raise ConfigError(problems)
    return new


def start_problems(config: GatewayConfig, source: str) -> list[str]:
    """What keeps a valid config from starting: serial devices that are not there."""
    return [
        f"{source}: buses[{i}].device: no such device (got {bus.device!r})"
        for i, bus in enumerate(config.buses)
        if bus.transport == "rtu" and bus.device and not Path(bus.device).exists()
    ]


async def switch(gateway: Gateway, new: GatewayConfig, source: str) -> None:
    """Replace the running poller by one for `new`. Polls under way finish first, so their
    readings reach the outbox; on failure the previous config polls again and this raises."""
    scheduler = gateway.scheduler
    if scheduler is None:
        raise ConfigError([f"{source}: the gateway is not running yet"])
    old_config, old = gateway.config, gateway.poller
    old.stop(scheduler)
    await old.idle()
    old.close()
    started: Poller | None = None
    try:
        problems = start_problems(new, source)
        if problems:
            raise ConfigError(problems)
        started = gateway.new_poller(new)
        started.start(scheduler)
    except BaseException:
        if started is not None:
            started.stop(scheduler)
            started.close()
        restored = gateway.new_poller(old_config)
        restored.stats.update(old.stats)
        restored.start(scheduler)
        gateway.poller = restored
        raise
    # counters of meters that stay go on, so health does not jump back to zero
    started.stats.update({k: v for k, v in old.stats.items() if k in started.stats})
    gateway.adopt(new, started)


def save(path: Path, text: str) -> None:
    """Replace the config file atomically: a power cut leaves the old file or the new one."""
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o640
    tmp = path.with_name(f".{path.name}.new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)  # the umask may have taken bits away
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
