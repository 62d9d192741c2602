"""`sparwatt-collector gateway ...`: provision and revoke gateways' broker credentials, push
a config to a gateway, and read or scan its meters through the broker (docs/fleet.md)."""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import sys
import time
from pathlib import Path

from collector import settings
from collector.cli import fleet
from collector.cli.common import config as load_config
from collector.cli.common import query_options
from collector.ingest.remote import Pump, Requests
from collector.ingest.subscriber import Subscriber
from collector.provisioning import broker, files, provision
from sparwatt import configfile, wire
from sparwatt.console import EXIT_FAIL, EXIT_OK, EXIT_USAGE, emit
from sparwatt.errors import ConfigError, RemoteError

CONNECT_TIMEOUT_S = 10.0
DEFAULT_INSTALL_DIR = Path("/etc/sparwatt")


def _id(text: str) -> str:
    if re.fullmatch(wire.ID_PATTERN, text) is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an id: lowercase letters, digits, '-' or '_'"
        )
    return text


def _provisioning(args: argparse.Namespace) -> settings.Provisioning:
    config = load_config(args)
    if config.provisioning is None:
        where = args.config or "the collector config"
        raise ConfigError([f"{where}: [provisioning]: needed for this command (docs/fleet.md)"])
    return config.provisioning


# ---- credentials


def cmd_add(args: argparse.Namespace) -> int:
    p = _provisioning(args)
    output = args.output or Path(f"{provision.user_of(args.site, args.id)}.tgz")
    added = provision.add(
        p, args.site, args.id, output, args.install_dir, client_cert=args.cert, replace=args.replace
    )
    data = {
        "site": added.site,
        "gateway": added.gateway,
        "user": added.user,
        "bundle": str(added.bundle),
        "files": added.files,
        "reloaded": added.reloaded,
    }
    emit(
        args,
        data,
        f"{added.site}/{added.gateway}: broker user {added.user} "
        f"{'replaced' if args.replace else 'created'}, ACL written, broker reloaded "
        f"({added.reloaded}).\n"
        f"Bundle: {added.bundle} ({', '.join(added.files)}); readable by you only.\n"
        f"On the gateway:  sudo tar -xzf {added.bundle.name} -C {args.install_dir}\n"
        "The password is in the bundle and nowhere else: it is not shown.",
    )
    return EXIT_OK


def cmd_revoke(args: argparse.Namespace) -> int:
    how = provision.revoke(_provisioning(args), args.site, args.id)
    emit(
        args,
        {"site": args.site, "gateway": args.id, "revoked": True, "reloaded": how},
        f"{args.site}/{args.id}: broker user and ACL entries removed, broker reloaded ({how}); "
        "the broker refuses the gateway from now on.",
    )
    return EXIT_OK


def cmd_acl(args: argparse.Namespace) -> int:
    p = _provisioning(args)
    with files.locked(p.password_file):
        broker.write_acl(p, files.read_text(p.password_file))
    how = broker.reload(p)
    emit(args, {"acl": str(p.acl_file), "reloaded": how}, f"{p.acl_file} written; {how}")
    return EXIT_OK


def cmd_provisioned(args: argparse.Namespace) -> int:
    found = provision.provisioned(_provisioning(args))
    emit(
        args,
        [{"site": s, "gateway": g} for s, g in found],
        "\n".join(f"{s}/{g}" for s, g in found) or "no gateway provisioned",
    )
    return EXIT_OK


# ---- requests through the broker


def _connect(config: settings.CollectorConfig) -> tuple[Subscriber, Requests, Pump]:
    """An admin connection of its own: a fresh client id and no session, so it never takes
    over the running collector's session."""
    token = secrets.token_hex(4)
    requests = Requests(f"admin-{token}")
    password = configfile.read_secret(
        config.mqtt.password_file, "SPARWATT_MQTT_PASSWORD", dict(os.environ)
    )
    client = Subscriber(
        config.mqtt,
        password,
        client_id=f"{config.mqtt.client_id}-admin-{token}",
        channels=(),
        persistent=False,
        replies=requests,
    )

    def pump(seconds: float) -> object:
        return client.take(1, 0.0, first_wait_s=seconds)

    client.start()
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    while not client.connected.is_set():
        if time.monotonic() > deadline:
            client.stop()
            raise RemoteError(
                f"cannot connect to broker {config.mqtt.host}:{config.mqtt.port} "
                f"within {CONNECT_TIMEOUT_S:g} s"
            )
        pump(0.05)
    return client, requests, pump


def cmd_config_push(args: argparse.Namespace) -> int:
    config = load_config(args)
    try:
        text = args.file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"{args.file}: cannot read: {exc}", file=sys.stderr)
        return EXIT_USAGE
    named = _named_gateway(text)
    if named is not None and named != (args.site, args.id):
        print(
            f"{args.file}: gateway: this config is for {named[0]}/{named[1]}, "
            f"not for {args.site}/{args.id}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    client, requests, pump = _connect(config)
    try:
        result = requests.push_config(args.site, args.id, text, str(args.file), args.timeout, pump)
    finally:
        client.stop()
    if args.json:
        print(json.dumps(result.model_dump(mode="json", by_alias=True), indent=2))
    elif result.ok:
        print(f"{args.site}/{args.id} runs config {result.version} ({args.file})")
    else:
        # the gateway's lines, exactly as check-config prints them for this file
        print(
            f"{args.site}/{args.id} refused config {result.version}; it keeps running "
            f"{result.running_version or 'its previous config'}:\n" + "\n".join(result.errors),
            file=sys.stderr,
        )
    return EXIT_OK if result.ok else EXIT_FAIL


def _named_gateway(text: str) -> tuple[str, str] | None:
    """(site, id) a config names, if it is TOML that names both; the gateway judges the rest."""
    try:
        table = configfile.parse_toml(text, "-").get("gateway")
    except ConfigError:
        return None
    if isinstance(table, dict) and isinstance(table.get("site"), str):
        gateway_id = table.get("id")
        if isinstance(gateway_id, str):
            return table["site"], gateway_id
    return None


def cmd_read(args: argparse.Namespace) -> int:
    client, requests, pump = _connect(load_config(args))
    try:
        reply = requests.read_meter(args.site, args.id, args.meter, args.timeout, pump)
    finally:
        client.stop()
    lines = [f"{args.site}/{args.id} {reply.meter}:"]
    if reply.ok:
        lines += [
            f"  {name:<30} {value:>14.3f} {reply.unit.get(name, '')}"
            for name, value in reply.values.items()
        ]
        lines += [f"  {name:<30} {'implausible':>14}" for name in reply.invalid]
        lines.append(f"  {reply.requests} requests, {reply.latency_ms} ms")
    else:
        lines.append(f"  FAILED: {reply.error}")
    emit(args, reply.model_dump(mode="json", by_alias=True), "\n".join(lines))
    return EXIT_OK if reply.ok else EXIT_FAIL


def cmd_scan(args: argparse.Namespace) -> int:
    client, requests, pump = _connect(load_config(args))
    try:
        reply = requests.scan_bus(args.site, args.id, args.bus, args.units, args.timeout, pump)
    finally:
        client.stop()
    if reply.ok:
        human = (
            "\n".join(f"unit {hit.unit}: {hit.guess or 'unknown model'}" for hit in reply.found)
            or "no responding unit"
        )
    else:
        human = f"FAILED: {reply.error}"
    emit(args, reply.model_dump(mode="json", by_alias=True), human)
    return EXIT_OK if reply.ok and reply.found else EXIT_FAIL


# ---- the command tree


def _options() -> argparse.ArgumentParser:
    return query_options(db=False)


def _target(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--site", required=True, type=_id)
    sp.add_argument("--id", required=True, type=_id, help="gateway id")


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    query: list[argparse.ArgumentParser],
) -> None:
    """The `gateway` group; `query`: the parents of commands that read the database."""
    common = [_options()]
    group = sub.add_parser(
        "gateway",
        help="provision gateways, push configs to them, read their meters",
        description=__doc__,
    )
    gsub = group.add_subparsers(dest="gateway_command", required=True)

    sp = gsub.add_parser(
        "add",
        parents=common,
        help="create a gateway's broker credentials and ACL entries, and its installer bundle",
    )
    _target(sp)
    sp.add_argument("--cert", action="store_true", help="also a client certificate (CA key)")
    sp.add_argument("--output", type=Path, help="bundle file (default ./<site>.<id>.tgz)")
    sp.add_argument(
        "--install-dir",
        type=Path,
        default=DEFAULT_INSTALL_DIR,
        help="where the installer unpacks the bundle on the gateway "
        f"(default {DEFAULT_INSTALL_DIR}); the config's paths point there",
    )
    sp.add_argument(
        "--replace", action="store_true", help="new credentials for a provisioned gateway"
    )
    sp.set_defaults(func=cmd_add)

    fleet.register_list(gsub, query)  # what the collector knows of each gateway
    sp = gsub.add_parser(
        "provisioned",
        parents=common,
        help="the gateways with broker credentials (the password file), seen or not",
    )
    sp.set_defaults(func=cmd_provisioned)

    sp = gsub.add_parser(
        "revoke", parents=common, help="remove a gateway's credentials; the broker refuses it"
    )
    _target(sp)
    sp.set_defaults(func=cmd_revoke)

    sp = gsub.add_parser(
        "acl", parents=common, help="rewrite the broker ACL from the password file and reload"
    )
    sp.set_defaults(func=cmd_acl)

    cfg = gsub.add_parser("config", help="remote configuration of a gateway")
    csub = cfg.add_subparsers(dest="config_command", required=True)
    sp = csub.add_parser(
        "push",
        parents=common,
        help="send a gateway a new config; it validates, applies and keeps it, or refuses it",
    )
    _target(sp)
    sp.add_argument("file", type=Path, help="the gateway's new config (TOML)")
    sp.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for the answer")
    sp.set_defaults(func=cmd_config_push)

    sp = gsub.add_parser("read", parents=common, help="read one meter of a gateway now")
    _target(sp)
    sp.add_argument("--meter", required=True, type=_id)
    sp.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the answer")
    sp.set_defaults(func=cmd_read)

    sp = gsub.add_parser(
        "scan", parents=common, help="find responding unit ids on one of a gateway's buses"
    )
    _target(sp)
    sp.add_argument("--bus", required=True, type=_id)
    sp.add_argument("--units", default="1-32", help="unit id range, e.g. 1-32")
    sp.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="seconds to wait (a silent unit costs the bus's timeout_s x (retries + 1))",
    )
    sp.set_defaults(func=cmd_scan)
