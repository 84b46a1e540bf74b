"""Maintenance scripts (run from the repository root, e.g. `python scripts/screenshot.py`)."""
