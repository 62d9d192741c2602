"""The savings scan: detectors run on stored data, reconciled with the opportunities kept."""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from collector.analysis import Opportunity, SiteContext, reconcile
from collector.analysis import scan_report as run_scan
from collector.analysis.scan import Skipped
from collector.evaluation.inputs import (
    load_series,
)
from collector.settings import Evaluation as EvaluationSettings
from collector.store import OpportunityRow, Reader, Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScanResult:
    opened: list[Opportunity]
    updated: list[Opportunity]
    closed: list[Opportunity]
    errors: int
    skipped: list[Skipped] = dataclasses.field(default_factory=list)


def _finite(value: Any) -> Any:
    """JSON has no infinity: an endless payback is stored as null."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _stored(row: OpportunityRow) -> Opportunity | None:
    # the fields of an Opportunity the scan stored; a row that no longer fits raises below
    fields: dict[str, Any] = row.data
    try:
        return Opportunity(**fields)
    except TypeError:
        log.warning("stored opportunity unreadable id=%s; it is treated as new", row.id)
        return None


def refresh_opportunities(
    store: Store,
    reader: Reader,
    contexts: Mapping[str, SiteContext],
    settings: EvaluationSettings,
    now_ms: int,
) -> ScanResult:
    """Scan the sites in `contexts`, reconcile with the stored opportunities and save them."""
    series = load_series(reader, contexts, now_ms, settings.scan_days, settings.dedicated_meters)
    report = run_scan(series, contexts, now_ms)
    previous = [o for o in map(_stored, reader.opportunities()) if o is not None]
    opened, updated, closed = reconcile(previous, report.opportunities, now_ms)
    store.save_opportunities(
        OpportunityRow(
            o.id,
            o.site,
            o.meter,
            o.kind,
            o.status,
            {k: _finite(v) for k, v in dataclasses.asdict(o).items()},
            now_ms,
        )
        for o in (*opened, *updated, *closed)
    )
    log.info(
        "savings scan meters=%d opened=%d updated=%d closed=%d errors=%d",
        len(series),
        len(opened),
        len(updated),
        len(closed),
        report.errors,
    )
    for skip in report.skipped:
        log.info(
            "detector skipped site=%s meter=%s detector=%s reason=%s",
            skip.site, skip.meter, skip.detector, skip.reason,
        )  # fmt: skip
    return ScanResult(opened, updated, closed, report.errors, report.skipped)
