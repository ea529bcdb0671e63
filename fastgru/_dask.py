"""What fastgru.distributed's Sequential and Functional paths share: worker-thread settings, metric
reductions, the Dask client and array helpers, chunk alignment. Dask is imported inside the functions."""

from __future__ import annotations

import threading

import numpy as np

_local = threading.local()


def _configure_thread(num_threads: int | None) -> None:
    """Set fastgru's thread count once per worker thread (Numba's setting is per thread)."""
    if num_threads is None or getattr(_local, "num_threads", None) == num_threads:
        return
    from ._threads import set_num_threads

    set_num_threads(num_threads)
    _local.num_threads = num_threads


def _metric_sums(metric) -> tuple[float, float]:
    """(total, count) of a mean-type metric (``result() == total / count``)."""
    from .training import metrics as metrics_module

    if isinstance(metric, metrics_module.AutoAccuracy):
        if metric.metric is None:
            return 0.0, 0.0
        metric = metric.metric
    if isinstance(metric, metrics_module.Mean):
        return float(metric.total), float(metric.count)
    raise TypeError(
        f"fastgru.distributed.evaluate reduces mean-type metrics (accuracy, mae, mse, ...); metric "
        f"{getattr(metric, 'name', metric)!r} of type {type(metric).__name__} has no (total, count) state"
    )


def _sum_parts(*parts: np.ndarray) -> np.ndarray:
    return np.sum(np.stack(parts), axis=0)


def _get_client(client):
    try:
        from distributed import get_client
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "fastgru.distributed needs dask and distributed: pip install 'fastgru[dask]'"
        ) from exc
    if client is not None:
        return client
    try:
        return get_client()
    except ValueError:
        raise ValueError(
            "fastgru.distributed needs a dask.distributed Client: create one first, e.g. "
            "Client(LocalCluster(n_workers=2, threads_per_worker=1)) on one machine or "
            "Client('tcp://scheduler-address:8786') for a cluster, or pass client="
        ) from None


def _dask_array():
    try:
        import dask.array as da
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "fastgru.distributed needs dask and distributed: pip install 'fastgru[dask]'"
        ) from exc
    return da


def _check_num_threads(num_threads) -> None:
    if num_threads is not None and (isinstance(num_threads, bool) or not isinstance(num_threads, (int, np.integer))
                                    or num_threads < 1):
        raise ValueError(f"num_threads must be a positive integer or None, received {num_threads!r}")


def _scatter(client, model):
    """One copy of the model on every worker, under a fresh key (changed weights never hit an old copy)."""
    return client.scatter(model, broadcast=True, hash=False)


def _aligned_chunks(chunks: tuple, batch_size: int) -> tuple:
    """Batch-axis chunks whose boundaries fall on multiples of ``batch_size`` (the last one on n)."""
    n = int(sum(chunks))
    ends = np.cumsum(chunks)[:-1]
    cuts = sorted({int(e) // batch_size * batch_size for e in ends} - {0})
    bounds = [0] + cuts + [n]
    return tuple(b - a for a, b in zip(bounds[:-1], bounds[1:]) if b > a) or (n,)


def _as_dask_like(da, a, name: str, n: int, batch_chunks: tuple):
    """``a`` (numpy or dask, first axis ``n`` long) as a dask array with ``batch_chunks`` along axis 0."""
    if isinstance(a, da.Array):
        if a.ndim == 0 or a.shape[0] != n:
            raise ValueError(f"{name} must have {n} entries along its first axis (as x), received shape {a.shape}")
        return a.rechunk({0: batch_chunks, **{i: -1 for i in range(1, a.ndim)}})
    a = np.asarray(a)
    if a.ndim == 0 or len(a) != n:
        raise ValueError(f"{name} must have {n} entries along its first axis (as x), received shape {a.shape}")
    return da.from_array(a, chunks=(batch_chunks,) + tuple((d,) for d in a.shape[1:]))
