"""Tools for the demo, the tests and the benchmarks; not part of an installed service."""
