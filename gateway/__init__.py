"""Sparwatt gateway: reads energy meters over Modbus and publishes readings over MQTT."""
