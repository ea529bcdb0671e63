"""pytest configuration for the benchmark suites (run them with ``pytest benchmarks/ --benchmark-only``;
they are not part of the project's test run, whose testpaths is ``tests/``)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "big: a large benchmark shape (S3, S4; seconds per round); deselect with -m 'not big'"
    )
