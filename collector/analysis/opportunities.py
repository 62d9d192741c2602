"""Turn findings into priced opportunities and reconcile them with the previous scan."""

from __future__ import annotations

from dataclasses import replace

from collector.analysis.findings import Finding, Opportunity, stable_id
from collector.analysis.measures import measure_for
from collector.analysis.money import is_rentabel, simple_payback
from collector.analysis.site_context import SiteContext


def to_opportunity(finding: Finding, ctx: SiteContext, now_ms: int) -> Opportunity:
    """Attach the measure (action, investment, lifetime), payback and 'rentabel' to a finding."""
    measure = measure_for(finding.kind, ctx.measures)
    investment = measure.investment_dkk + measure.investment_dkk_per_unit * finding.size
    payback = simple_payback(investment, finding.annual_dkk)
    return Opportunity(
        id=stable_id(finding.site, finding.meter, finding.kind),
        site=finding.site,
        meter=finding.meter,
        kind=finding.kind,
        period_start_ms=finding.period_start_ms,
        period_end_ms=finding.period_end_ms,
        evidence=dict(finding.evidence),
        annual_kwh=round(finding.annual_kwh, 1),
        annual_dkk=round(finding.annual_dkk, 0),
        annual_kg_co2=round(finding.annual_kg_co2, 1),
        action=measure.action,
        investment_dkk=round(investment, 0),
        lifetime_years=measure.lifetime_years,
        payback_years=round(payback, 2),
        rentabel=is_rentabel(payback, measure.lifetime_years, ctx.payback.company_limit_years),
        confidence=round(min(max(finding.confidence, 0.0), 1.0), 2),
        first_seen_ms=now_ms,
        last_seen_ms=now_ms,
    )


def reconcile(
    previous: list[Opportunity], current: list[Opportunity], now: int
) -> tuple[list[Opportunity], list[Opportunity], list[Opportunity]]:
    """Compare two scans by id: (opened, updated, closed) at epoch ms `now`.

    An id seen before keeps its first_seen; one that was closed and is back is opened again;
    an open one missing from `current` is closed.
    """
    before = {o.id: o for o in previous}
    seen: set[str] = set()
    opened: list[Opportunity] = []
    updated: list[Opportunity] = []
    for cur in current:
        if cur.id in seen:
            continue
        seen.add(cur.id)
        old = before.get(cur.id)
        if old is None or old.status == "closed":
            opened.append(replace(cur, status="open", first_seen_ms=now, last_seen_ms=now))
        else:
            updated.append(replace(cur, first_seen_ms=old.first_seen_ms, last_seen_ms=now))
    closed = [
        replace(o, status="closed", closed_ms=now, last_seen_ms=o.last_seen_ms)
        for o in previous
        if o.status == "open" and o.id not in seen
    ]
    return opened, updated, closed
