"""sparwatt-collector: the command line of the collector."""

from collector.cli.main import main

__all__ = ["main"]
