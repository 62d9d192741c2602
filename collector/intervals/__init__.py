"""15-minute interval energy and power derived from raw meter readings."""
