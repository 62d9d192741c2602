"""A gateway with one good meter and one that stops answering, for fleet and metrics tests."""

from __future__ import annotations

from pathlib import Path

from tests.support.processes import gateway_config

MODEL = "eastron-sdm630"


def sim_with_failing_meter(good_port: int, failing_port: int, silent_after: int = 8) -> str:
    """Simulator TOML: unit 1 on `good_port` answers; unit 2 on `failing_port` answers its
    first `silent_after` requests, then nothing (a meter that lost power or its wiring)."""
    return (
        "tick_s = 1.0\n"
        f'[[servers]]\ntransport = "tcp"\nport = {good_port}\n'
        f'[[servers.meters]]\nunit = 1\nmodel = "{MODEL}"\nseed = 1\nstart_kwh = 1000\n'
        f'[[servers]]\ntransport = "tcp"\nport = {failing_port}\n'
        f'[[servers.meters]]\nunit = 2\nmodel = "{MODEL}"\nseed = 2\nstart_kwh = 2000\n'
        f"[servers.meters.faults]\nsilent_after = {silent_after}\n"
    )


def gateway_with_failing_meter(
    state_dir: Path,
    site: str,
    broker_port: int,
    good_port: int,
    failing_port: int,
    gateway_id: str = "gw1",
    extra: str = "",
) -> str:
    """Gateway TOML: meter m1 on bus b1 (`good_port`), m2 on its own bus b2, so m2's
    timeouts never delay m1."""
    return gateway_config(
        state_dir,
        site,
        broker_port,
        good_port,
        [(1, MODEL)],
        gateway_id=gateway_id,
        extra=(
            f'[[buses]]\nid = "b2"\ntransport = "tcp"\nhost = "127.0.0.1"\n'
            f"port = {failing_port}\ntimeout_s = 0.5\n\n"
            f'[[meters]]\nid = "m2"\nbus = "b2"\nunit = 2\nmodel = "{MODEL}"\n'
            f"interval_s = 1.0\n\n" + extra
        ),
    )
