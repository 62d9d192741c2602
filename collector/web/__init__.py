"""The collector's web pages and HTTP API (see docs/web.md)."""
