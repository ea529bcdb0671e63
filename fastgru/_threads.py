"""One thread setting for Numba's parallel regions and the OpenBLAS libraries NumPy and SciPy bundle.

Numba's ``np.dot`` calls SciPy's BLAS; NumPy's own matmul calls NumPy's. Both are OpenBLAS builds in
the PyPI wheels, whose thread count is set through their C API (located with ctypes). Where no such
library is found (another BLAS), only Numba's threads are controlled.
"""

from __future__ import annotations

import ctypes
import glob
import os
from contextlib import contextmanager

import numba

_SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads", "openblas_set_num_threads")
_GETTERS = ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads", "openblas_get_num_threads")
_state: dict = {"n": None, "blas": None, "blas_n": None}


def _openblas_libs() -> list[tuple]:
    """(setter, getter) pairs for every bundled OpenBLAS (SciPy's and NumPy's)."""
    if _state["blas"] is not None:
        return _state["blas"]
    import numpy
    import scipy
    import scipy.linalg.cython_blas  # noqa: F401  (loads SciPy's BLAS, the one Numba calls)

    found = []
    for pkg in (scipy, numpy):
        libdir = os.path.join(os.path.dirname(os.path.dirname(pkg.__file__)), pkg.__name__ + ".libs")
        for path in glob.glob(os.path.join(libdir, "*openblas*")):
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            setter = next((getattr(lib, s) for s in _SETTERS if hasattr(lib, s)), None)
            getter = next((getattr(lib, s) for s in _GETTERS if hasattr(lib, s)), None)
            if setter is not None:
                setter.argtypes = [ctypes.c_int]
                found.append((setter, getter))
    _state["blas"] = found
    return found


def _set_blas_threads(n: int) -> None:
    if _state["blas_n"] == n:
        return
    for setter, _ in _openblas_libs():
        setter(int(n))
    _state["blas_n"] = n


def set_num_threads(n: int) -> None:
    """Use ``n`` threads in fastgru's kernels and the BLAS underneath them (1 ≤ n ≤ cores)."""
    n = int(n)
    if not 1 <= n <= numba.config.NUMBA_NUM_THREADS:
        raise ValueError(f"num_threads must be between 1 and {numba.config.NUMBA_NUM_THREADS}, got {n}")
    numba.set_num_threads(n)
    _set_blas_threads(n)
    _state["n"] = n


def get_num_threads() -> int:
    """The thread count fastgru uses (defaults to the number of cores Numba sees)."""
    if _state["n"] is None:
        _state["n"] = numba.config.NUMBA_NUM_THREADS
    return _state["n"]


@contextmanager
def blas_threads(n: int):
    """Temporarily run BLAS with ``n`` threads (1 inside a batch-parallel kernel: no oversubscription)."""
    previous = _state["blas_n"] if _state["blas_n"] is not None else get_num_threads()
    _set_blas_threads(n)
    try:
        yield
    finally:
        _set_blas_threads(previous)
