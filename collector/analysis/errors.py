"""Exceptions raised by the analysis layer.

AnalysisError
 +-- SeriesError      a MeterSeries that breaks the input contract (shape, grid, role)
 +-- SiteConfigError  a site context that cannot be used (also see sparwatt.configfile.ConfigError)
"""

from __future__ import annotations


class AnalysisError(Exception):
    """Base class for everything the analysis layer raises on purpose."""


class SeriesError(AnalysisError):
    """A MeterSeries that breaks the input contract."""


class SiteConfigError(AnalysisError):
    """A site context that cannot be used."""
