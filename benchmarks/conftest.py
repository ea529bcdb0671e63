"""pytest configuration for the benchmark suites (run them with ``pytest benchmarks/ --benchmark-only``;
they are not part of the project's test run, whose testpaths is ``tests/``)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "big: a large benchmark shape (S3, S4; seconds per round); deselect with -m 'not big'"
    )


def pytest_benchmark_update_machine_info(config, machine_info):
    """Record with every pytest-benchmark run what its timings depend on: the CPU's vector extensions,
    fastgru's tile layout, OpenBLAS's kernel set and ``OPENBLAS_CORETYPE`` (``fastgru.bench.environment``)."""
    from fastgru.bench import environment

    machine_info["fastgru_environment"] = environment()
