"""Block splits learned from meters, kept across restarts in the gateway's state folder.

A meter that refuses a block (exception 02) teaches the reader where to split it; without
this file every restart would learn it again, at the cost of a refusal on the bus. Only
those splits are kept: a split learned from an unanswered block may come from a noisy line,
and a quantity dropped after a refusal should be tried again after a restart.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

FILE_NAME = "learned-splits.json"
Break = tuple[str, int]  # (function, address) where a block is split


def load(path: Path) -> dict[str, dict[str, object]]:
    """The file's entries by meter id; a missing or unreadable file gives none."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("%s: ignoring learned splits (%s); they will be learned again", path, exc)
        return {}
    return data if isinstance(data, dict) else {}


def breaks_for(
    entries: dict[str, dict[str, object]], meter_id: str, model: str, unit: int
) -> set[Break]:
    """The splits learned for this meter, if it is still the same model at the same unit."""
    entry = entries.get(meter_id)
    if not isinstance(entry, dict) or (entry.get("model"), entry.get("unit")) != (model, unit):
        return set()
    items = entry.get("breaks")
    found: set[Break] = set()
    for item in items if isinstance(items, list) else []:
        if (
            isinstance(item, list)
            and len(item) == 2
            and item[0] in ("holding", "input")
            and isinstance(item[1], int)
            and not isinstance(item[1], bool)
        ):
            found.add((item[0], item[1]))
    return found


def save(path: Path, meters: dict[str, tuple[str, int, set[Break]]]) -> None:
    """Write every meter's splits (meter id -> model, unit, breaks) in one atomic replace."""
    data = {
        meter_id: {"model": model, "unit": unit, "breaks": sorted(map(list, breaks))}
        for meter_id, (model, unit, breaks) in sorted(meters.items())
        if breaks
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = path.with_name(path.name + ".new")
    fresh.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(fresh, path)
