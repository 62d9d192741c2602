"""The fleet view: every gateway's state, versions, outbox and meter polling, for the fleet
page, `GET /api/fleet` and `sparwatt-collector gateway list`."""

from collector.fleet.state import (
    DEFAULT_HEALTH_INTERVAL_S,
    SILENT_AFTER_INTERVALS,
    FleetGateway,
    FleetMeter,
    fleet,
    fleet_row,
    tally,
)

__all__ = [
    "DEFAULT_HEALTH_INTERVAL_S",
    "SILENT_AFTER_INTERVALS",
    "FleetGateway",
    "FleetMeter",
    "fleet",
    "fleet_row",
    "tally",
]
