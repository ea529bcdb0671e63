"""One thread setting for fastgru's kernel threads and the OpenBLAS libraries NumPy and SciPy bundle.

The kernels (Numba, ``nogil``) run one chunk of batch rows per thread: :func:`run_chunks` calls them
side by side on a small pool of Python worker threads. Numba's ``np.dot`` calls SciPy's BLAS; NumPy's
own matmul calls NumPy's. Both are OpenBLAS builds in the PyPI wheels, whose thread count is set
through their C API (located with ctypes).

Policy (no oversubscription, no per-call toggling, which costs milliseconds when OpenBLAS respawns
its threads): every thread is fastgru's. SciPy's BLAS, the one the kernels call inside them, and
NumPy's, used for the products outside the time loops (Dense, Conv2D), run single-threaded once
fastgru has run a kernel or been given a thread count; :func:`threaded_matmul` splits a large NumPy
product's rows over fastgru's threads instead. OpenBLAS's own threads spin ~0.1 s after each call
(2^28 cycles) and took a core from the next kernel: a CRNN (Conv2D, then LSTMs) ran 3x slower on two
threads than on one. Where no OpenBLAS is found (another BLAS), only fastgru's own threads are
controlled.
"""

from __future__ import annotations

import ctypes
import glob
import importlib.machinery
import importlib.util
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numba
import numpy as np

from ._kernels.atomics import NO_POST
from ._placement import WorkerPlacement
from ._spin_pool import SpinPool

_SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads", "openblas_set_num_threads")
_CORENAMES = ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename", "openblas_get_corename")
_state: dict = {"n": None, "blas": None, "kernel_blas_single": False, "scipy_core": None}
_local = threading.local()


def _openblas_libs() -> dict[str, list]:
    """Thread setters of the bundled OpenBLAS libraries, by package ("scipy", "numpy")."""
    if _state["blas"] is not None:
        return _state["blas"]
    found: dict[str, list] = {"scipy": [], "numpy": []}
    preload_scipy_blas()
    for name in ("scipy", "numpy"):
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            continue
        package_dir = list(spec.submodule_search_locations)[0]
        libdir = os.path.join(os.path.dirname(package_dir), name + ".libs")
        for path in glob.glob(os.path.join(libdir, "*openblas*")):
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            setter = next((getattr(lib, s) for s in _SETTERS if hasattr(lib, s)), None)
            if setter is not None:
                setter.argtypes = [ctypes.c_int]
                found[name].append(setter)
            corename = next((getattr(lib, s) for s in _CORENAMES if hasattr(lib, s)), None)
            if corename is not None and name == "scipy":
                corename.restype = ctypes.c_char_p
                _state["scipy_core"] = (corename() or b"").decode("ascii", "replace").strip() or None
    _state["blas"] = found
    return found


_BLAS_MODULE = "scipy.linalg.cython_blas"


def preload_scipy_blas() -> None:
    """Load ``scipy.linalg.cython_blas``, where Numba's kernels find BLAS, without ``scipy.linalg``.

    Numba imports that module on a kernel's first BLAS call; the ordinary import first runs
    ``scipy/linalg/__init__.py``, which imports most of SciPy's array-API layer: 0.25-0.4 s of a fresh
    process's first ``predict``, for one extension module that needs none of it. Loaded here from its
    file (30 ms) and registered under its own name; when anything imports ``scipy.linalg`` later, the
    module is attached to it as usual (:class:`_AttachBlasModule`). Any surprise (another SciPy
    layout) leaves the ordinary import to happen.
    """
    if _BLAS_MODULE in sys.modules or "scipy.linalg" in sys.modules:
        return
    try:
        spec = importlib.util.find_spec("scipy")
        if spec is None or not spec.submodule_search_locations:
            return
        linalg_dir = os.path.join(list(spec.submodule_search_locations)[0], "linalg")
        files = [os.path.join(linalg_dir, "cython_blas" + suffix)
                 for suffix in importlib.machinery.EXTENSION_SUFFIXES]
        path = next((f for f in files if os.path.exists(f)), None)
        if path is None:
            return
        module_spec = importlib.util.spec_from_file_location(_BLAS_MODULE, path)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        if not hasattr(module, "__pyx_capi__"):
            return
    except Exception:  # noqa: BLE001  (any failure: Numba's own import will do it the ordinary way)
        return
    sys.modules[_BLAS_MODULE] = module
    sys.meta_path.insert(0, _AttachBlasModule)


class _AttachBlasModule:
    """Meta-path finder that hands out ``scipy.linalg``'s ordinary spec with a loader that, once the
    package has run, sets its ``cython_blas`` attribute to the module :func:`preload_scipy_blas`
    registered (what an ordinary submodule import would have done); then it removes itself."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name != "scipy.linalg":
            return None
        if _AttachBlasModule in sys.meta_path:
            sys.meta_path.remove(_AttachBlasModule)
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_package = spec.loader.exec_module

        def exec_and_attach(module):
            exec_package(module)
            blas = sys.modules.get(_BLAS_MODULE)
            if blas is not None:
                module.cython_blas = blas

        spec.loader.exec_module = exec_and_attach
        return spec


def _set_blas_threads(package: str, n: int) -> None:
    for setter in _openblas_libs()[package]:
        setter(int(n))


def kernel_blas_single_threaded() -> None:
    """Make SciPy's BLAS (called inside the kernels, on fastgru's threads) and NumPy's (whose large products
    :func:`threaded_matmul` splits over fastgru's threads) single-threaded, once."""
    if not _state["kernel_blas_single"]:
        _set_blas_threads("scipy", 1)
        _set_blas_threads("numpy", 1)
        _state["kernel_blas_single"] = True


def set_num_threads(n: int) -> None:
    """Use ``n`` threads in fastgru's kernels and products (1 ≤ n ≤ cores); the BLAS libraries underneath run
    single-threaded on them."""
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"set_num_threads expects an integer, received {type(n).__name__} {n!r}")
    n = int(n)
    if not 1 <= n <= numba.config.NUMBA_NUM_THREADS:
        raise ValueError(f"num_threads must be between 1 and {numba.config.NUMBA_NUM_THREADS}, got {n}")
    kernel_blas_single_threaded()  # (the BLAS libraries single-threaded: fastgru's threads split the work)
    _state["n"] = n


def get_num_threads() -> int:
    """The thread count fastgru uses (defaults to the number of cores Numba sees)."""
    if _state["n"] is None:
        _state["n"] = numba.config.NUMBA_NUM_THREADS
    return _state["n"]


_pool: dict = {"executor": None, "workers": 0, "spin": None, "spin_workers": 0, "lock": threading.Lock(),
               "placement": WorkerPlacement(), "spin_placement": WorkerPlacement()}


def _forget_workers_after_fork() -> None:
    """A forked child has none of the parent's worker threads: it starts its own when needed."""
    _pool.update(executor=None, workers=0, spin=None, spin_workers=0, lock=threading.Lock(),
                 placement=WorkerPlacement(), spin_placement=WorkerPlacement())


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_workers_after_fork)


def _workers(n: int) -> ThreadPoolExecutor:
    """The pool of (at least) ``n`` sleeping worker threads, kept off the calling thread's CPU
    (:mod:`fastgru._placement`): call it right before handing work over."""
    with _pool["lock"]:
        if _pool["executor"] is None or _pool["workers"] < n:
            old = _pool["executor"]
            placement = WorkerPlacement()  # (this pool's threads only: the old ones exit)
            _pool["executor"] = ThreadPoolExecutor(max_workers=n, thread_name_prefix="fastgru-kernel",
                                                   initializer=placement.register_current_thread)
            _pool["workers"] = n
            _pool["placement"] = placement
            if old is not None:
                old.shutdown(wait=False)
        executor, placement = _pool["executor"], _pool["placement"]
    placement.keep_off_caller_cpu()
    return executor


def _spin_workers(n: int) -> SpinPool:
    """The pool of (at least) ``n`` spinning worker threads (``fastgru._spin_pool``), kept off the
    calling thread's CPU like :func:`_workers`'s."""
    pool = _pool["spin"]
    if pool is not None and _pool["spin_workers"] >= n:  # (the common case, without the lock: ~0.2 us)
        _pool["spin_placement"].keep_off_caller_cpu()
        return pool
    with _pool["lock"]:
        if _pool["spin"] is None or _pool["spin_workers"] < n:
            old = _pool["spin"]
            placement = WorkerPlacement()
            _pool["spin"] = SpinPool(n, initializer=placement.register_current_thread, name="fastgru-spin",
                                     serve=_compiled_tasks().serve_next)
            _pool["spin_workers"] = n
            _pool["spin_placement"] = placement
            if old is not None:
                old.shutdown()
        pool, placement = _pool["spin"], _pool["spin_placement"]
    placement.keep_off_caller_cpu()
    return pool


#: multiply-adds (of the whole call) under which ``run_chunks`` hands its chunks to the spinning workers
#: rather than the sleeping ones: a hand-off to a sleeping worker costs 75-100 us of wake-ups on a
#: virtual machine, a few percent of a call this size; above it the sleeping workers take the chunks
#: (training steps with chunks of milliseconds ran 5-10% slower on the spinning ones, measured on the
#: Xeon: docs/performance.md, "Handing chunks to the workers")
SPIN_HANDOFF_WORK = int(os.environ.get("FASTGRU_SPIN_HANDOFF_WORK", "40000000"))


def run_chunks(chunk: Callable[..., None], rows: int, n_chunks: int, work: float = 0.0,
               posts: bool = False, record_kind: int = 0) -> None:
    """Call ``chunk(c, b0, b1)`` for ``n_chunks`` contiguous ranges ``b0:b1`` of ``rows`` batch rows:
    chunk 0 in this thread, the others on fastgru's worker threads, side by side (the kernels release
    the GIL). Returns when all are done; the first exception raised by a chunk is raised here.
    ``work``, the call's multiply-adds where the caller knows them: a call under ``SPIN_HANDOFF_WORK``
    hands its chunks to spinning workers (``fastgru._spin_pool``: a few microseconds where a sleeping
    worker's wake-up costs tens), where a chunk its worker has not started when this thread is done with
    its own runs here. ``posts``: chunk 0 is called ``chunk(0, b0, b1, post)`` and its kernel publishes
    ``post`` as its first step (``_kernels.atomics.publish_post``; ``NO_POST`` when there is nothing to
    publish): the last worker's task is posted from inside this thread's kernel, with the GIL released,
    so that neither thread waits for the other to reach its kernel (``SpinPool.submit_deferred``).
    ``record_kind`` (``_kernels.task_records``; 0: none): the kernel may also write the worker's share
    down as a task record of that kind, which the worker then runs from compiled code, without Python
    (``_kernels.compiled_tasks``); the kind's runner is compiled first, here.

    Python threads rather than Numba's ``parallel=True``: an OpenMP parallel region is compiled per
    kernel (seconds on a fresh install), spins at its barrier (tens of milliseconds per call when
    another process holds the other core) and does not survive ``fork``.
    """
    if n_chunks <= 1:
        if posts:
            chunk(0, 0, rows, NO_POST)
        else:
            chunk(0, 0, rows)
        return
    spinning = 0 < work < SPIN_HANDOFF_WORK
    executor = _spin_workers(n_chunks - 1) if spinning else _workers(n_chunks - 1)
    bounds = [(c * rows // n_chunks, (c + 1) * rows // n_chunks) for c in range(n_chunks)]
    post = None
    if spinning and posts and _DEFERRED_POST:
        futures = [executor.submit(chunk, c, *bounds[c]) for c in range(1, n_chunks - 1)]
        record = _COMPILED_WORKER and record_kind != 0
        if record:
            _compiled_tasks().ready(record_kind)
        last, post = executor.submit_deferred(chunk, n_chunks - 1, *bounds[-1], record=record)
        futures.append(last)
        if post is not None:
            post = (*post, *bounds[-1])  # (the worker's rows, for a task record)
    else:
        futures = [executor.submit(chunk, c, *bounds[c]) for c in range(1, n_chunks)]
    try:
        if posts:
            chunk(0, *bounds[0], NO_POST if post is None else post)
        else:
            chunk(0, *bounds[0])
    finally:
        for future in futures:
            future.result()


def run_beside(main: Callable[[tuple], None], side: Callable[[], None], record_kind: int = 0) -> None:
    """``main(post)`` in this thread and ``side()`` on a spinning worker, side by side; returns when both
    are done (the first exception raised, ``main``'s first, is raised here). ``main``'s kernel publishes
    ``post`` as its first step (and, with ``record_kind``, may write the worker's task down as a record
    of that kind, run from compiled code: ``run_chunks``'s deferred hand-off). ``side`` must be work
    that ``main`` does itself whatever ``side`` has done (``_kernels.shared_projection``: blocks
    claimed by whichever thread gets there first): a worker that is asleep, or not there when
    ``main`` is done, has its task taken back and run here."""
    executor = _spin_workers(1)
    record = _COMPILED_WORKER and record_kind != 0
    if record:
        _compiled_tasks().ready(record_kind)
    task, post = executor.submit_deferred(side, record=record)
    try:
        main(NO_POST if post is None else (*post, 0, 0))
    finally:
        task.result()


#: ``run_chunks(posts=True)`` posts the last worker's task from inside chunk 0's kernel (3.5-4.4 us less
#: of S2's 88 at 2 threads, measured: docs/performance.md); ``FASTGRU_DEFERRED_POST=0`` posts it the
#: usual way (``SpinPool.submit``: the caller spins until the worker reaches its kernel), for comparison
_DEFERRED_POST = os.environ.get("FASTGRU_DEFERRED_POST", "1") == "1"
#: the spinning workers run an inference forward's share from compiled code (``_kernels.compiled_tasks``:
#: the caller's kernel writes it down as a task record); ``FASTGRU_COMPILED_WORKER=0``: through Python
_COMPILED_WORKER = os.environ.get("FASTGRU_COMPILED_WORKER", "1") == "1"


def _compiled_tasks():
    module = _pool.get("compiled_tasks")
    if module is None:  # (the kernels' modules: imported at the first spinning pool)
        from ._kernels import compiled_tasks as module

        _pool["compiled_tasks"] = module
    return module


#: multiply-adds below which a kernel call runs as one chunk: handing a chunk to a spinning worker
#: (``fastgru._spin_pool``) costs ~20 us of the call (the worker's Python reaching its kernel while
#: the caller waits, then the caller's), more than splitting work under ~5e6 multiply-adds (about
#: 90 us on one core here) saves (measured: docs/performance.md, "Handing chunks to the workers").
#: ``FASTGRU_MIN_CHUNK_WORK`` overrides it (the tests set 0, so that small shapes split too).
MIN_CHUNK_WORK = int(os.environ.get("FASTGRU_MIN_CHUNK_WORK", "2500000"))


def threaded_matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``a @ b`` for 2-D ``a`` (M, K) and ``b`` (K, N), the rows of a large product split over fastgru's threads
    (each a single-threaded NumPy BLAS call on its rows, the GIL released: the same numbers whatever the
    split). ``out``: a C-contiguous (M, N) array to write into."""
    kernel_blas_single_threaded()
    m, k = a.shape
    if out is None:
        out = np.empty((m, b.shape[1]), np.result_type(a.dtype, b.dtype))
    chunks = n_chunks_for(m, m * k * b.shape[1])
    if chunks <= 1:
        return np.matmul(a, b, out=out)
    run_chunks(lambda _c, r0, r1: np.matmul(a[r0:r1], b, out=out[r0:r1]), m, chunks)
    return out


def n_chunks_for(rows: int, work: float) -> int:
    """How many chunks of batch rows a kernel call should run side by side: one per kernel thread
    (``kernel_threads()``), at most ``rows``, and each with at least ``MIN_CHUNK_WORK`` of the call's
    ``work`` (its multiply-adds)."""
    if work < 2 * MIN_CHUNK_WORK or rows < 2:  # (one chunk: decided before asking for the thread count)
        return 1
    by_work = int(work // MIN_CHUNK_WORK) if MIN_CHUNK_WORK > 0 else rows
    return max(1, min(kernel_threads(), rows, by_work))


@contextmanager
def held_or_refused(lock: threading.Lock, message: str):
    """Hold ``lock`` for the block, or raise ``RuntimeError(message)`` at once when another thread holds
    it (stateful models and layers: overlapping calls would interleave their carried states)."""
    if not lock.acquire(blocking=False):
        raise RuntimeError(message)
    try:
        yield
    finally:
        lock.release()


def side_by_side(first: Callable[[], object], second: Callable[[], object]) -> tuple:
    """``(first(), second())`` for two independent kernel calls: side by side, ``second`` on a worker
    thread, each running its kernels as one chunk, when fastgru may use two or more threads; one
    after the other otherwise (the two directions of a Bidirectional layer)."""
    if get_num_threads() < 2:
        return first(), second()

    def one_chunk(fn):
        with one_thread_per_kernel():
            return fn()

    future = _workers(1).submit(one_chunk, second)
    try:
        a = one_chunk(first)
    finally:
        b = future.result()
    return a, b


def kernel_threads() -> int:
    """Threads one kernel call may split its batch over: ``get_num_threads()``, or 1 inside
    :func:`one_thread_per_kernel` (in this Python thread only)."""
    return 1 if getattr(_local, "one_thread", False) else get_num_threads()


@contextmanager
def one_thread_per_kernel():
    """Within the block, kernels called from this Python thread run as one chunk (no worker threads):
    for callers that run several independent kernels side by side in Python threads (the two
    directions of a Bidirectional layer), since the kernels release the GIL."""
    previous = getattr(_local, "one_thread", False)
    _local.one_thread = True
    try:
        yield
    finally:
        _local.one_thread = previous


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


_state["batch_invariant"] = _env_flag("FASTGRU_BATCH_INVARIANT")


def set_batch_invariant(enabled: bool) -> None:
    """Make inference batch-invariant (``True``) or use the fastest products (``False``, the default).

    Batch-invariant: ``predict`` gives every row bit-identical outputs whatever else shares its batch,
    whatever ``batch_size`` and whatever the thread count. The recurrent kernels' products (input
    projection and step product) always are: fastgru's packed micro-kernel sums each row in one fixed
    order. In this mode Dense's products run through it too, instead of BLAS, whose order depends on
    where a row falls in its tiles. The cost is measured per shape in docs/reliability.md. The environment variable
    ``FASTGRU_BATCH_INVARIANT=1`` sets it at import. Training is not affected.
    """
    if not isinstance(enabled, (bool, np.bool_)):
        raise TypeError(f"set_batch_invariant expects True or False, received {enabled!r}")
    _state["batch_invariant"] = bool(enabled)


def get_batch_invariant() -> bool:
    """Whether inference is batch-invariant (see :func:`set_batch_invariant`)."""
    return _state["batch_invariant"]


def kernel_blas_core() -> str | None:
    """The CPU kernel set SciPy's OpenBLAS (the BLAS inside fastgru's kernels) picked, e.g. 'SkylakeX'
    or 'Haswell' (``OPENBLAS_CORETYPE`` changes it); None when it cannot be asked."""
    _openblas_libs()
    return _state.get("scipy_core")
