"""Numba-compiled kernels: pure functions of arrays, no validation, no Python objects."""

from . import cache_stamp

cache_stamp.install()  # (before any kernel is decorated: each one's cache keyed on every kernel module's source)
