"""Shared pieces of Sparwatt: the MQTT wire contract and config-file loading."""

__version__ = "0.1.0"
