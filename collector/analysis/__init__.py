"""Savings analysis on 15-minute meter data: detectors, pricing and opportunity tracking."""

from collector.analysis.findings import Finding, Opportunity, stable_id
from collector.analysis.opportunities import reconcile, to_opportunity
from collector.analysis.scan import ScanReport, scan, scan_report
from collector.analysis.series import MeterSeries
from collector.analysis.site_context import SiteContext, Sites, load_sites

__all__ = [
    "Finding",
    "MeterSeries",
    "Opportunity",
    "ScanReport",
    "SiteContext",
    "Sites",
    "load_sites",
    "reconcile",
    "scan",
    "scan_report",
    "stable_id",
    "to_opportunity",
]
