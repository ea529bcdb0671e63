"""``fastgru.distributed.predict/evaluate`` for Functional models (``fastgru.Model``): several dask
arrays (a list in input order or a dict keyed by input name), one block of rows per task.

The inputs are rechunked to common batch-axis chunks (the first input's; for ``evaluate`` moved to
multiples of ``batch_size``, as for Sequential), each task runs ``model.predict`` (or the test step)
on its rows of every input, and the outputs come back as lazy dask arrays (a list or a dict, as the
model returns them). Imports dask lazily, like ``fastgru.distributed``.
"""

from __future__ import annotations

import copy

import numpy as np

from . import _dask as base
from .model_inputs import inputs_of_dict


def _inputs(model, x) -> list:
    """The model's inputs as a list of dask arrays (batch axis chunked only, one row count)."""
    da = base._dask_array()
    names = model.input_names
    if isinstance(x, dict):  # (other keys left aside, as Model.predict and Keras's Functional do)
        xs = inputs_of_dict(model, x, f"model {model.name!r}")
    elif isinstance(x, (list, tuple)):
        if len(x) != len(names):
            raise ValueError(f"model {model.name!r} expects {len(names)} input(s) {names}, received {len(x)}")
        xs = list(x)
    else:
        if len(names) != 1:
            raise ValueError(f"model {model.name!r} expects {len(names)} inputs {names}: give a list or a dict of "
                             "dask arrays")
        xs = [x]
    checked = []
    for name, t, a in zip(names, model._inputs, xs):
        what = f"input {name!r}"
        if not isinstance(a, da.Array):
            raise TypeError(f"{what} must be a dask.array.Array chunked along the batch axis, received "
                            f"{type(a).__name__}")
        if a.ndim != len(t.shape) or any(e is not None and e != r for e, r in zip(t.shape[1:], a.shape[1:])):
            raise ValueError(f"model {model.name!r} {what} expects shape {t.shape}, received {a.shape}")
        if a.dtype == object or a.dtype.kind not in "fiub":
            raise TypeError(f"{what} must hold numbers, received dtype {a.dtype}")
        if any(np.isnan(c) for c in a.chunks[0]):
            raise ValueError(f"{what} has unknown chunk sizes along the batch axis; call compute_chunk_sizes() "
                             "first")
        if any(len(a.chunks[axis]) > 1 for axis in range(1, a.ndim)):
            raise ValueError(f"{what} is chunked along an axis other than the batch axis; fastgru needs whole "
                             "sequences in every block: rechunk it with -1 on every other axis")
        if checked and a.shape[0] != checked[0].shape[0]:
            raise ValueError(f"all inputs need the same number of rows: {what} has {a.shape[0]}, the first "
                             f"{checked[0].shape[0]}")
        checked.append(a)
    return checked


def _check_model(model) -> None:
    stateful = [layer.name for layer in model._weighted_layers if getattr(layer, "stateful", False)]
    if stateful:
        raise ValueError(f"stateful layers {stateful} carry state from one batch to the next, which independent "
                         "blocks on different workers cannot do; rebuild the model with stateful=False")


def _predict_block(model, batch_size, num_threads, *blocks):
    base._configure_thread(num_threads)
    outs = model.predict(list(blocks), batch_size=batch_size)
    return outs if isinstance(outs, list) else list(outs.values()) if isinstance(outs, dict) else [outs]


def predict_graph(model, x, batch_size, client, num_threads):
    import dask

    da = base._dask_array()
    _check_model(model)
    base._check_num_threads(num_threads)
    if batch_size is not None and int(batch_size) <= 0:
        raise ValueError(f"batch_size must be a positive integer or None, received {batch_size!r}")
    xs = _inputs(model, x)
    chunks = xs[0].chunks[0]
    xs = [a.rechunk({0: chunks, **{i: -1 for i in range(1, a.ndim)}}) for a in xs]
    client = base._get_client(client)
    model_future = base._scatter(client, model)
    blocks = [a.to_delayed().reshape(-1) for a in xs]
    dtype = np.dtype(np.float64 if all(a.dtype == np.float64 for a in xs) else np.float32)
    task = dask.delayed(_predict_block, pure=True, nout=len(model._outputs))
    parts = [task(model_future, batch_size, num_threads, *[b[i] for b in blocks]) for i in range(len(chunks))]
    # the outputs' shapes after the batch axis for these inputs (time axes of None are known here): one row
    probe, _ = model._run([np.zeros((1,) + tuple(int(d) for d in a.shape[1:]), a.dtype) for a in xs])
    outs = []
    for k, p in enumerate(probe):
        pieces = [da.from_delayed(parts[i][k], shape=(int(rows),) + p.shape[1:], dtype=dtype)
                  for i, rows in enumerate(chunks)]
        outs.append(da.concatenate(pieces, axis=0))
    return model._structured(outs)


def _evaluate_block(model, batch_size, num_threads, n_inputs, *blocks):
    """Loss and metric (total, count) pairs of one block, computed batch by batch as ``evaluate``."""
    from .training.multi_output import MultiArray, MultiCompiled, test_step

    base._configure_thread(num_threads)
    xs, rest = list(blocks[:n_inputs]), list(blocks[n_inputs:])
    sw = rest.pop() if len(rest) > len(model._outputs) else None
    shared = model._compiled
    view = object.__new__(type(model))
    view.__dict__.update(model.__dict__)
    loss, loss_weights, metrics, weighted = shared.spec
    view._compiled = MultiCompiled(model, shared.optimizer, loss, loss_weights, copy.deepcopy(metrics),
                                   copy.deepcopy(weighted))
    for start in range(0, len(xs[0]), batch_size):
        part = slice(start, start + batch_size)
        test_step(view, MultiArray([a[part] for a in xs]), MultiArray([y[part] for y in rest]),
                  None if sw is None else sw[part])
    compiled = view._compiled
    sums = [base._metric_sums(compiled.loss_tracker)] + [base._metric_sums(m) for m in compiled.metrics]
    return np.array(sums, dtype=np.float64).reshape(-1)


def evaluate_graph(model, x, y, batch_size, sample_weight, client, num_threads, return_dict):
    import dask

    da = base._dask_array()
    _check_model(model)
    base._check_num_threads(num_threads)
    compiled = getattr(model, "_compiled", None)
    if compiled is None:
        raise RuntimeError("You must call compile() before evaluating the model")
    if y is None:
        raise ValueError("evaluate needs targets y; received y=None")
    batch_size = 32 if batch_size is None else int(batch_size)
    if batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer, received {batch_size!r}")
    xs = _inputs(model, x)
    n = int(xs[0].shape[0])
    chunks = base._aligned_chunks(xs[0].chunks[0], batch_size)
    xs = [a.rechunk({0: chunks, **{i: -1 for i in range(1, a.ndim)}}) for a in xs]
    names = model.output_names
    if isinstance(y, dict):
        if sorted(y) != sorted(names):
            raise ValueError(f"model {model.name!r} has outputs {names}; the targets dict has keys {sorted(y)}")
        ys = [y[k] for k in names]
    elif isinstance(y, (list, tuple)) and len(names) > 1:
        if len(y) != len(names):
            raise ValueError(f"model {model.name!r} has {len(names)} outputs {names}, received {len(y)} targets")
        ys = list(y)
    else:
        ys = [y]
    ys = [base._as_dask_like(da, a, f"y[{k!r}]", n, chunks) for k, a in zip(names, ys)]
    extra = [] if sample_weight is None else [base._as_dask_like(da, sample_weight, "sample_weight", n, chunks)]
    arrays = xs + ys + extra
    blocks = [a.to_delayed().reshape(-1) for a in arrays]
    client = base._get_client(client)
    model_future = base._scatter(client, model)
    task = dask.delayed(_evaluate_block, pure=True)
    parts = [task(model_future, batch_size, num_threads, len(xs), *[b[i] for b in blocks]) for i in range(len(chunks))]
    add = dask.delayed(base._sum_parts, pure=True)
    while len(parts) > 1:
        parts = [add(*parts[i: i + 16]) for i in range(0, len(parts), 16)]
    sums = client.compute(parts[0]).result().reshape(-1, 2)
    values = [float(np.float32(t / c)) if c else 0.0 for t, c in sums]
    names, order = _result_names(model)
    logs = dict(zip(names, values))
    if return_dict:
        return dict(sorted(logs.items()))  # (keys sorted, as Keras's and the model's own evaluate)
    from .training.compile_metrics import in_order

    values = in_order(logs, order)  # (the model's own evaluate list)
    return values[0] if len(values) == 1 else values


def _result_names(model) -> tuple[list[str], list[str]]:
    """The logged names of the evaluate blocks' sums (loss, the outputs' losses, then the metrics), and the
    names Keras's evaluate list looks them up by (``MultiCompiled.order``)."""
    from .training.multi_output import MultiCompiled

    shared = model._compiled
    loss, loss_weights, metrics, weighted = shared.spec
    # a fresh copy names its metrics as the model's own evaluate does (compile_metrics), in the same order
    probe = MultiCompiled(model, shared.optimizer, loss, loss_weights, copy.deepcopy(metrics), copy.deepcopy(weighted))
    probe.ensure_metrics([None] * len(probe.names), [None] * len(probe.names))
    return ["loss"] + [m.name for m in probe.metrics], probe.order()
