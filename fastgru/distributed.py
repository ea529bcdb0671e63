"""Batch inference and evaluation on a Dask cluster (``pip install fastgru[dask]``).

``predict(model, x)`` maps ``model.predict`` over the blocks of a ``dask.array`` chunked along the
sequence (batch) axis and returns a lazy dask array of predictions; ``evaluate(model, x, y)``
reduces per-block loss and metric sums to what ``model.evaluate`` reports. The model travels once
per call: it is scattered to every worker (``client.scatter(model, broadcast=True)``) as its pickle,
configuration + weights (see ``fastgru._pickle``), and each worker process unpickles it once and
loads the Numba kernels from their on-disk cache (or compiles them) on first use, once per process.

Each task sets ``fg.set_num_threads(num_threads)`` (default 1) in its worker thread: parallelism
comes from Dask's workers and threads, not from fastgru's kernel threads, so a cluster with one
worker thread per core is not oversubscribed.

Dask is imported inside the functions: importing ``fastgru`` or ``fastgru.distributed`` does not
import it.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import numpy as np

from ._dask import (
    _aligned_chunks,
    _as_dask_like,
    _check_num_threads,
    _configure_thread,
    _dask_array,
    _get_client,
    _metric_sums,
    _scatter,
    _sum_parts,
)

if TYPE_CHECKING:  # pragma: no cover
    import dask.array
    from distributed import Client

__all__ = ["evaluate", "predict"]


def _predict_block(x_block: np.ndarray, model, batch_size: int | None, num_threads: int | None,
                   out_dtype: np.dtype) -> np.ndarray:
    _configure_thread(num_threads)
    return np.asarray(model.predict(x_block, batch_size=batch_size)).astype(out_dtype, copy=False)


def _evaluate_block(x_block: np.ndarray, y_block: np.ndarray, sw_block: np.ndarray | None, model,
                    batch_size: int, num_threads: int | None) -> np.ndarray:
    """``[loss total, loss count, metric1 total, metric1 count, ...]`` (float64) for one block,
    computed batch by batch exactly as ``model.evaluate`` computes them."""
    from .training import trainer
    from .training.metrics import Metric

    _configure_thread(num_threads)
    shared = model._compiled
    specs = [copy.deepcopy(s) if isinstance(s, Metric) else s for s in shared.metric_specs]
    weighted = [copy.deepcopy(s) if isinstance(s, Metric) else s for s in shared.weighted_specs]
    # a per-task view of the model with its own loss tracker and metrics: the worker's model object
    # is shared by its threads, so its compiled state must not be updated in place
    view = object.__new__(type(model))
    view.__dict__.update(model.__dict__)
    view._compiled = trainer.Compiled(shared.optimizer, shared.loss, specs, weighted)
    for start in range(0, len(x_block), batch_size):
        part = slice(start, start + batch_size)
        trainer.test_step(view, x_block[part], y_block[part], None if sw_block is None else sw_block[part])
    compiled = view._compiled
    sums = [_metric_sums(compiled.loss_tracker)]
    if compiled.metrics is None:  # a block without batches: no metric was ever updated
        sums += [(0.0, 0.0)] * (len(specs) + len(weighted))
    else:
        sums += [_metric_sums(m) for m in compiled.metrics]
    return np.array(sums, dtype=np.float64).reshape(-1)


def _check_model(model) -> None:
    from .models import Sequential

    if not isinstance(model, Sequential):
        raise TypeError(f"expected a fastgru Sequential model, received {type(model).__name__}")
    stateful = [layer.name for layer in model._layers_and_ops if getattr(layer, "stateful", False)]
    if stateful:
        raise ValueError(
            f"stateful layers {stateful} carry state from one batch to the next, which independent "
            "blocks on different workers cannot do; rebuild the model with stateful=False"
        )


def _check_x(model, x, what: str = "x"):
    """Validate a dask array of inputs (batch axis chunked only) and build the model if needed."""
    da = _dask_array()
    if not isinstance(x, da.Array):
        raise TypeError(
            f"{what} must be a dask.array.Array chunked along the batch axis, received "
            f"{type(x).__name__}; wrap a numpy array with dask.array.from_array(x, chunks=(rows, -1, -1))"
        )
    expected = model.input_shape if model.built else None
    if (x.ndim != len(expected)) if expected is not None else (x.ndim < 2):
        rank = len(expected) if expected is not None else "at least 2"
        layout = "(sequences, timesteps)" if rank == 2 else "(sequences, timesteps, features)"
        raise ValueError(
            f"{what} must have rank {rank} {layout} for model {model.name!r}"
            f"{'' if expected is None else f' built for input shape {expected}'}; received shape {x.shape}"
        )
    if x.dtype == object or x.dtype.kind not in "fiub":
        raise TypeError(f"{what} must hold numbers, received dtype {x.dtype}")
    if any(np.isnan(c) for c in x.chunks[0]):
        raise ValueError(
            f"{what} has unknown chunk sizes along the batch axis; call {what}.compute_chunk_sizes() first"
        )
    split = [axis for axis in range(1, x.ndim) if len(x.chunks[axis]) > 1]
    if split:
        names = {1: "time", 2: "features"}
        axes = ", ".join(f"{a} ({names.get(a, 'axis')}: {len(x.chunks[a])} chunks)" for a in split)
        raise ValueError(
            f"{what} is chunked along axis {axes}; fastgru needs whole sequences in every block, so chunk "
            f"along the batch axis only: {what} = {what}.rechunk({{0: 'auto', "
            + ", ".join(f"{a}: -1" for a in range(1, x.ndim)) + "})"
        )
    if expected is not None:
        for axis in range(2, x.ndim):
            if expected[axis] is not None and x.shape[axis] != expected[axis]:
                raise ValueError(
                    f"model {model.name!r} expects input shape {expected} (axis {axis} = {expected[axis]}), "
                    f"{what} has shape {x.shape}"
                )
    if not model.built:  # as Keras's predict: build from the data, here once, before the model travels
        model.build((None,) + tuple(x.shape[1:]))
    return x


def _output_shape(model, x_shape: tuple) -> tuple:
    shape: Any = (None,) + tuple(x_shape[1:])
    for layer in model._layers_and_ops:
        shape = layer.compute_output_shape(tuple(shape))
        if isinstance(shape, list):
            raise ValueError(
                f"layer {layer.name!r} returns several arrays (return_state=True); "
                "fastgru.distributed.predict needs a model with one output"
            )
    return tuple(shape)


def predict(model, x: dask.array.Array, *, batch_size: int | None = None, client: Client | None = None,
            num_threads: int | None = 1) -> dask.array.Array:
    """Predictions for a dask array ``x`` of shape (sequences, timesteps, features).

    ``x`` must be chunked along the sequence axis only; each block of ``rows`` sequences becomes one
    task running ``model.predict(block, batch_size=batch_size)`` on a worker, so a task holds one
    input block, its output block and the model's working arrays for ``batch_size`` rows (the whole
    block when None). Returns a lazy dask array of shape ``(sequences,) + output_shape[1:]``
    (``(sequences, units)``, or ``(sequences, timesteps, units)`` with ``return_sequences``), with
    the same chunks along the sequence axis; call ``.compute()`` or store it (``to_zarr``...).

    The model is scattered to all workers once, as it is now (later changes to it do not reach
    this job); an unbuilt model is built here first, so every worker uses the same weights.
    ``num_threads``: fastgru's kernel threads per task (default 1: Dask's workers provide the
    parallelism; None leaves the worker's setting alone). float64 inputs give float64 predictions,
    any other dtype float32.

    A Functional model (``fastgru.Model``) takes a list (input order) or a dict (input names) of dask
    arrays, one per input, and returns one lazy dask array per output, structured as its ``predict``
    (fastgru/distributed_functional.py).
    """
    if getattr(model, "_fg_model", False):
        from .distributed_functional import predict_graph

        return predict_graph(model, x, batch_size, client, num_threads)
    _check_model(model)
    _check_num_threads(num_threads)
    x = _check_x(model, x)
    if batch_size is not None and int(batch_size) <= 0:
        raise ValueError(f"batch_size must be a positive integer or None, received {batch_size!r}")
    out_shape = _output_shape(model, x.shape)
    out_dtype = np.dtype(np.float64 if x.dtype == np.float64 else np.float32)
    client = _get_client(client)
    model_future = _scatter(client, model)
    out_ndim = len(out_shape)
    chunks = (x.chunks[0],) + tuple((int(d),) for d in out_shape[1:])
    kwargs: dict[str, Any] = {}
    if out_ndim < x.ndim:
        kwargs["drop_axis"] = list(range(out_ndim, x.ndim))
    elif out_ndim > x.ndim:
        kwargs["new_axis"] = list(range(x.ndim, out_ndim))
    da = _dask_array()
    return da.map_blocks(
        _predict_block, x, model_future, batch_size, num_threads, out_dtype,
        chunks=chunks, dtype=out_dtype, meta=np.empty((0,) * out_ndim, out_dtype),
        token="fastgru-predict", **kwargs,
    )


def evaluate(model, x: dask.array.Array, y, *, batch_size: int | None = None, sample_weight=None,
             client: Client | None = None, num_threads: int | None = 1, return_dict: bool = False):
    """``model.evaluate(x, y)`` over dask arrays: the loss, or ``[loss, *metrics]`` (a dict with
    ``return_dict``), for a compiled model.

    ``x``: dask array (sequences, timesteps, features) chunked along the sequence axis; ``y`` (and
    ``sample_weight``): dask or numpy arrays with one entry per sequence. Each block is evaluated on
    a worker in batches of ``batch_size`` (default 32, as Keras), with block boundaries moved to
    multiples of ``batch_size`` so the batches are those of ``model.evaluate``; each block returns
    its loss and metric sums (a few floats), and the sums are added up in float64. Mean-type
    metrics only (accuracy, mae, mse and other ``Mean`` metrics). The result equals
    ``model.evaluate(x, y, batch_size=batch_size)`` up to the float32 rounding of Keras's running
    totals (bit for bit when ``x`` has one block).

    A Functional model takes its inputs as for :func:`predict` and its targets as its ``evaluate``
    does (one array, a list, or a dict keyed by output name).
    """
    from .training import compile_metrics, trainer

    if getattr(model, "_fg_model", False):
        from .distributed_functional import evaluate_graph

        return evaluate_graph(model, x, y, batch_size, sample_weight, client, num_threads, return_dict)

    _check_model(model)
    _check_num_threads(num_threads)
    compiled = getattr(model, "_compiled", None)
    if compiled is None:
        raise RuntimeError("You must call compile() before evaluating the model")
    if y is None:
        raise ValueError("evaluate needs targets y; received y=None")
    x = _check_x(model, x)
    batch_size = 32 if batch_size is None else int(batch_size)
    if batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer, received {batch_size!r}")
    da = _dask_array()
    n = int(x.shape[0])
    batch_chunks = _aligned_chunks(x.chunks[0], batch_size)
    x = x.rechunk({0: batch_chunks})
    y = _as_dask_like(da, y, "y", n, batch_chunks)
    sw = None if sample_weight is None else _as_dask_like(da, sample_weight, "sample_weight", n, batch_chunks)
    # the logged names, as the model's own evaluate gives them (compile_metrics), from a fresh copy
    probe = trainer.Compiled(compiled.optimizer, compiled.loss, copy.deepcopy(compiled.metric_specs),
                             copy.deepcopy(compiled.weighted_specs))
    names = ["loss"] + [m.name for m in probe.ensure_metrics(None, None)]

    import dask

    client = _get_client(client)
    model_future = _scatter(client, model)
    x_blocks = x.to_delayed().reshape(-1)
    y_blocks = y.to_delayed().reshape(-1)
    sw_blocks = [None] * len(x_blocks) if sw is None else list(sw.to_delayed().reshape(-1))
    block = dask.delayed(_evaluate_block, pure=True)
    parts = [block(xb, yb, sb, model_future, batch_size, num_threads)
             for xb, yb, sb in zip(x_blocks, y_blocks, sw_blocks)]
    add = dask.delayed(_sum_parts, pure=True)
    while len(parts) > 1:  # tree reduction: a handful of floats per block
        parts = [add(*parts[i : i + 16]) for i in range(0, len(parts), 16)]
    sums = client.compute(parts[0]).result().reshape(-1, 2)
    values = [float(np.float32(t / c)) if c else 0.0 for t, c in sums]
    logs = dict(zip(names, values))
    if return_dict:
        return dict(sorted(logs.items()))  # (keys sorted, as Keras's and the model's own evaluate)
    values = compile_metrics.in_order(logs, probe.order())  # (the model's own evaluate list)
    return values[0] if len(values) == 1 else values
