"""The broker ACL: who may use which topic, and that it names exactly the wire's topics."""

from __future__ import annotations

from sparwatt import broker_acl, wire


def test_a_gateway_may_write_exactly_its_own_wire_topics_and_read_its_requests() -> None:
    """broker_acl mirrors sparwatt/wire.py without importing it; this keeps them equal."""
    rules = broker_acl.gateway_rules("acme", "gw1", "homeassistant")
    writes = {r.removeprefix("topic write ") for r in rules if r.startswith("topic write ")}
    reads = {r.removeprefix("topic read ") for r in rules if r.startswith("topic read ")}
    assert len(writes) + len(reads) == len(rules)
    assert writes == {
        wire.topic("acme", "gw1", "readings"),
        wire.topic("acme", "gw1", "status"),
        wire.topic("acme", "gw1", "health"),
        wire.config_result_topic("acme", "gw1"),
        wire.reply_prefix("acme", "gw1") + "#",
        wire.state_topic("acme", "gw1", "#"),
        f"homeassistant/sensor/{broker_acl.home_assistant_node('acme', 'gw1')}/#",
    }
    assert reads == {wire.config_set_topic("acme", "gw1"), wire.command_topic("acme", "gw1")}


def test_only_admins_may_write_config_and_command_topics() -> None:
    text, skipped = broker_acl.acl(["acme.gw1", "collector", "ha@acme", "Bad"], ["collector"])
    blocks = {b.splitlines()[0]: b.splitlines()[1:] for b in text.split("\n\n")[1:] if b.strip()}
    assert skipped == ["Bad"]
    assert blocks["user collector"] == [
        "topic read sparwatt/v1/#",
        "topic write sparwatt/v1/+/alerts",
        f"topic write {wire.config_set_topic('+', '+')}",
        f"topic write {wire.command_topic('+', '+')}",
    ]
    writers = [
        user
        for user, rules in blocks.items()
        if any("write" in r and "config/set" in r for r in rules)
    ]
    assert writers == ["user collector"]
    # a company's Home Assistant reads its own site's state and status, nothing else
    assert blocks["user ha@acme"] == [
        "topic read sparwatt/v1/acme/+/state/#",
        "topic read sparwatt/v1/acme/+/status",
    ]


def test_home_assistant_node_ids_of_different_gateways_differ() -> None:
    assert broker_acl.home_assistant_node("a_b", "c") != broker_acl.home_assistant_node("a", "b_c")
