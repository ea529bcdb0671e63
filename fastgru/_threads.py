"""One thread setting for Numba's parallel regions and the OpenBLAS libraries NumPy and SciPy bundle.

Numba's ``np.dot`` calls SciPy's BLAS; NumPy's own matmul calls NumPy's. Both are OpenBLAS builds in
the PyPI wheels, whose thread count is set through their C API (located with ctypes).

Policy (no oversubscription, no per-call toggling, which costs milliseconds when OpenBLAS respawns
its threads): the kernels' threads come from Numba's parallel regions, so SciPy's BLAS, the one the
kernels call inside those regions, runs single-threaded once fastgru has run a kernel; NumPy's BLAS,
used for the big GEMMs outside the time loops, gets ``get_num_threads()`` threads.
Where no OpenBLAS is found (another BLAS), only Numba's threads are controlled.
"""

from __future__ import annotations

import ctypes
import glob
import os

import numba

_SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads", "openblas_set_num_threads")
_state: dict = {"n": None, "blas": None, "kernel_blas_single": False}


def _openblas_libs() -> dict[str, list]:
    """Thread setters of the bundled OpenBLAS libraries, by package ("scipy", "numpy")."""
    if _state["blas"] is not None:
        return _state["blas"]
    import numpy
    import scipy
    import scipy.linalg.cython_blas  # noqa: F401  (loads SciPy's BLAS, the one Numba calls)

    found: dict[str, list] = {"scipy": [], "numpy": []}
    for pkg in (scipy, numpy):
        libdir = os.path.join(os.path.dirname(os.path.dirname(pkg.__file__)), pkg.__name__ + ".libs")
        for path in glob.glob(os.path.join(libdir, "*openblas*")):
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            setter = next((getattr(lib, s) for s in _SETTERS if hasattr(lib, s)), None)
            if setter is not None:
                setter.argtypes = [ctypes.c_int]
                found[pkg.__name__].append(setter)
    _state["blas"] = found
    return found


def _set_blas_threads(package: str, n: int) -> None:
    for setter in _openblas_libs()[package]:
        setter(int(n))


def kernel_blas_single_threaded() -> None:
    """Make SciPy's BLAS (called inside the kernels' parallel regions) single-threaded, once."""
    if not _state["kernel_blas_single"]:
        _set_blas_threads("scipy", 1)
        _state["kernel_blas_single"] = True


def set_num_threads(n: int) -> None:
    """Use ``n`` threads in fastgru's kernels and the BLAS underneath them (1 ≤ n ≤ cores)."""
    n = int(n)
    if not 1 <= n <= numba.config.NUMBA_NUM_THREADS:
        raise ValueError(f"num_threads must be between 1 and {numba.config.NUMBA_NUM_THREADS}, got {n}")
    numba.set_num_threads(n)
    _set_blas_threads("numpy", n)
    _state["n"] = n


def get_num_threads() -> int:
    """The thread count fastgru uses (defaults to the number of cores Numba sees)."""
    if _state["n"] is None:
        _state["n"] = numba.config.NUMBA_NUM_THREADS
    return _state["n"]
