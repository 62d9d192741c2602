"""Sparwatt collector: receives meter readings over MQTT, stores, analyses and alerts."""
