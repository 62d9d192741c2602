"""History from outside the gateways: a utility's metering-point data, backfills of
readings, read from files and written into the same store and 15-minute history."""
