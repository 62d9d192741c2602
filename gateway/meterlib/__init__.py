"""Shipped meter models, one TOML data file each."""
