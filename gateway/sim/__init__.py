"""Simulated energy meters served over Modbus, for demos, tests and installer training."""
