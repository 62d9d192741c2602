"""Which incoming topics are replies to this collector's own requests."""

from __future__ import annotations

import paho.mqtt.client as mqtt
import pytest

from collector.ingest.remote import Requests
from sparwatt import wire

TOPICS = [
    wire.reply_topic("plant", "gw1", "admin-1"),
    wire.reply_topic("plant", "gw1", "admin-2"),
    wire.reply_topic("other", "gw-9", "admin-1"),
    wire.reply_topic("plant", "gw1", "admin-1") + "/extra",
    wire.topic("plant", "gw1", "readings"),
    wire.topic("plant", "gw1", "status"),
    wire.command_topic("plant", "gw1"),
    "sparwatt/v1//gw1/reply/admin-1",
    "sparwatt/v1/plant//reply/admin-1",
    "sparwatt/v1/plant/gw1/reply/",
    "sparwatt/v1/plant/gw1/replies/admin-1",
    "sparwatt/v2/plant/gw1/reply/admin-1",
    "other/v1/plant/gw1/reply/admin-1",
    "sparwatt/v1/reply/admin-1",
    "admin-1",
]


@pytest.mark.parametrize("topic", TOPICS)
def test_a_topic_is_a_reply_exactly_when_the_reply_filter_matches_it(topic: str) -> None:
    requests = Requests("admin-1")
    assert requests.is_reply(topic) == mqtt.topic_matches_sub(requests.reply_filter, topic)


def test_replies_to_this_requester_are_recognised_and_others_are_not() -> None:
    requests = Requests("admin-1")
    assert requests.is_reply(wire.reply_topic("plant", "gw1", "admin-1"))
    assert not requests.is_reply(wire.reply_topic("plant", "gw1", "admin-2"))
    assert not requests.is_reply(wire.topic("plant", "gw1", "readings"))
