"""Second homes for accepted readings besides the store (InfluxDB line protocol)."""
