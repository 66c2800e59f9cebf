"""The peers of the benchmark, one module each (registry.py lists them)."""
