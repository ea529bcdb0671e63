"""Numba-compiled kernels: pure functions of arrays, no validation, no Python objects."""
