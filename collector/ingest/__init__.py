"""Ingest: the MQTT subscriber, the validation of each message, and the loop that stores them."""
