"""Command-line interface (thin layer over the Python API)."""
