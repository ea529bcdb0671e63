"""More of Keras's ``keras.ops`` on ``fastgru.ops`` (``op_functions`` has the table-made ones): ``pad``,
``average``, ``slice`` (a graph's Pad, Average and Slice nodes on symbolic tensors, NumPy's functions on arrays),
``layer_normalization``, ``rms_normalization`` and ``multi_hot`` (composed of ops as Keras computes them, so a
custom layer's ``gamma``/``scale`` weights train through them), ``segment_sum`` and ``segment_max`` (on arrays), and the
``ops.nn`` and ``ops.numpy`` namespaces (``keras.ops.nn.softmax``)."""

from __future__ import annotations

import types

import numpy as np

from .eager import eager, keras_array
from .errors import UnsupportedKerasFeature
from .layers.keras_ops import TENSOR_KEY, KerasOp, apply_op, numpy_constant
from .layers.op_attention import ATTENTION_OPS
from .op_functions import FUNCTIONS as OPS
from .op_numpy import keras_dtype
from .ops.ctc import ctc_loss as _ctc_loss_values
from .tracing import is_weight_valued, refuse_while_traced, tracing

_EPSILON = 1e-7  # (Keras's backend.epsilon())


def _symbolic(x) -> bool:
    return bool(getattr(x, "_fg_symbolic", False))


def _node(op: str, x, config: dict, args=(), kwargs=None):
    """The graph node ``op`` on the symbolic ``x`` (constant arguments after it, constant keyword arguments)."""
    template = {"args": [{TENSOR_KEY: 0}, *[numpy_constant(np.asarray(a)) for a in args]],
                "kwargs": {k: float(v) if np.ndim(v) == 0 else numpy_constant(np.asarray(v))
                           for k, v in (kwargs or {}).items()}}
    return KerasOp(op, config)([x], template=template)


def _on_arrays(what: str, *values) -> list:
    if tracing() is not None and any(is_weight_valued(v) for v in values):
        refuse_while_traced(f"keras.ops {what} of a weight")
    return [keras_array(v) for v in values]


def pad(x, pad_width, mode="constant", constant_values=None):
    """Keras's ``ops.pad``: ``pad_width`` a pair per axis (the batch axis's (0, 0) in a graph)."""
    if _symbolic(x):
        if mode not in ("constant", "reflect", "symmetric"):
            raise UnsupportedKerasFeature(f"keras.ops pad with mode={mode!r} in a graph (Keras's TensorFlow backend "
                                          "pads with 'constant', 'reflect' or 'symmetric')")
        return _node("Pad", x, {"pad_width": pad_width, "mode": mode},
                     kwargs={} if constant_values is None else {"constant_values": constant_values})
    (x,) = _on_arrays("pad", x)
    extra = {"constant_values": 0 if constant_values is None else constant_values} if mode == "constant" else {}
    return eager(np.pad(x, np.asarray(pad_width).tolist(), mode=mode, **extra))


def average(x, axis=None, weights=None):
    """Keras's ``ops.average``: the mean along ``axis``, weighted by ``weights`` (one per element of the axis)."""
    if _symbolic(x):
        return _node("Average", x, {"axis": axis}, kwargs={} if weights is None else {"weights": weights})
    (x,) = _on_arrays("average", x)
    result = np.average(x, axis=axis, weights=None if weights is None else keras_array(weights))
    return eager(keras_dtype(np.asarray(result), None, [x.dtype]))


def slice(inputs, start_indices, shape):  # noqa: A001  (Keras's name)
    """Keras's ``ops.slice``: ``shape`` elements from ``start_indices`` on every axis."""
    if _symbolic(inputs):
        return _node("Slice", inputs, {"shape": list(shape)}, args=[start_indices])
    (inputs,) = _on_arrays("slice", inputs)
    index = tuple(np.s_[int(s):None if int(n) == -1 else int(s) + int(n)]  # (-1: to the end, as Keras's)
                  for s, n in zip(np.reshape(start_indices, -1), shape))
    return eager(inputs[index].copy())


def _broadcast(value, axes: list, ndim: int, shape: tuple):
    """``gamma``/``beta`` reshaped onto the normalised axes when it is not of the input's rank (Keras's)."""
    if value is None or np.ndim(value) == ndim or axes == [ndim - 1]:
        return value
    target = [1] * ndim
    for a in axes:
        target[a] = shape[a]
    return OPS["reshape"](value, tuple(target))


def layer_normalization(x, gamma=None, beta=None, axis=-1, epsilon=None, **kwargs):
    """Keras's ``ops.layer_normalization``: ``x * inv + (beta - mean * inv)``, ``inv = gamma / sqrt(var + eps)``,
    composed of ops as Keras computes it (``rms_scaling``, deprecated in Keras, divides by the deviation)."""
    rms_scaling = kwargs.pop("rms_scaling", False)
    if kwargs:
        raise TypeError(f"layer_normalization got unexpected keyword arguments {sorted(kwargs)}")
    x = x if _symbolic(x) or is_weight_valued(x) else keras_array(x)
    eps = _EPSILON if epsilon is None else float(epsilon)
    ndim = len(x.shape)
    axes = sorted(a % ndim for a in ([axis] if isinstance(axis, int) else axis))
    gamma, beta = _broadcast(gamma, axes, ndim, x.shape), _broadcast(beta, axes, ndim, x.shape)
    mean, variance = OPS["moments"](x, axes=axes, keepdims=True)
    inv = OPS["rsqrt"](OPS["add"](variance, eps))
    if rms_scaling:
        out = OPS["multiply"](x, inv)
        return out if gamma is None else OPS["multiply"](out, gamma)
    if gamma is not None:
        inv = OPS["multiply"](inv, gamma)
    res = OPS["multiply"](OPS["negative"](mean), inv)
    if beta is not None:
        res = OPS["add"](res, beta)
    return OPS["add"](OPS["multiply"](x, inv), res)


def rms_normalization(x, scale=None, axis=-1, epsilon=None):
    """Keras's ``ops.rms_normalization``: ``x / sqrt(mean(x ** 2) + eps) * scale``, composed of ops."""
    x = x if _symbolic(x) or is_weight_valued(x) else keras_array(x)
    eps = _EPSILON if epsilon is None else float(epsilon)
    axes = tuple(sorted(axis)) if isinstance(axis, (list, tuple)) else axis
    rrms = OPS["rsqrt"](OPS["add"](OPS["mean"](OPS["square"](x), axis=axes, keepdims=True), eps))
    out = OPS["multiply"](x, rrms)
    return out if scale is None else OPS["multiply"](out, scale)


def _segments(what: str, data, segment_ids, num_segments, reduce, empty):
    if _symbolic(data) or _symbolic(segment_ids):
        raise UnsupportedKerasFeature(f"keras.ops {what} of a symbolic tensor: its segments run over the batch "
                                      "axis, which a fastgru graph keeps whole (use it on arrays)")
    data, ids = _on_arrays(what, data, segment_ids)
    ids = ids.astype(np.int64)
    n = int(ids.max()) + 1 if num_segments is None and ids.size else int(num_segments or 0)
    out = np.full((n,) + data.shape[1:], empty(data.dtype), dtype=data.dtype)
    keep = (ids >= 0) & (ids < n)
    reduce.at(out, ids[keep], data[keep])
    return eager(out)


def _lowest(dtype):
    return (np.finfo if dtype.kind == "f" else np.iinfo)(dtype).min


def segment_sum(data, segment_ids, num_segments=None, sorted=False):  # noqa: A002  (Keras's name)
    """Keras's ``ops.segment_sum``: the rows of ``data`` summed per segment id (0 for an empty segment)."""
    return _segments("segment_sum", data, segment_ids, num_segments, np.add, lambda d: 0)


def segment_max(data, segment_ids, num_segments=None, sorted=False):  # noqa: A002
    """Keras's ``ops.segment_max``: the rows' maximum per segment id (the dtype's lowest for an empty one)."""
    return _segments("segment_max", data, segment_ids, num_segments, np.maximum, _lowest)


def where(condition, x1=None, x2=None):
    """Keras's ``ops.where``: ``x1`` where ``condition`` holds, else ``x2``; with the condition alone, the int32
    indices of its true elements, one array per axis (on arrays)."""
    if x1 is not None or x2 is not None:
        return OPS["where"](condition, x1, x2)
    if _symbolic(condition):
        raise UnsupportedKerasFeature("keras.ops where of a symbolic condition alone (its indices: a number of "
                                      "elements no graph knows)")
    (condition,) = _on_arrays("where", condition)
    return eager([i.astype(np.int32) for i in np.nonzero(condition)])


def multi_hot(inputs, num_classes, axis=-1, dtype=None, sparse=False, **kwargs):
    """Keras's ``ops.multi_hot``: 1 for every class among each row's ids (the one-hot encodings' maximum over the
    ids' axis: axis 1 of a batch, 0 of one row)."""
    if sparse:
        raise UnsupportedKerasFeature("keras.ops multi_hot with sparse=True (fastgru computes dense arrays)")
    num_classes = kwargs.pop("num_tokens", num_classes)  # (Keras's former name)
    over = 1 if len(inputs.shape) > 1 else 0
    return OPS["max"](OPS["one_hot"](inputs, num_classes, axis=axis, dtype=dtype), axis=over)


def dot_product_attention(query, key, value, bias=None, mask=None, scale=None, is_causal=False, flash_attention=None,
                          attn_logits_soft_cap=None):
    """Keras's ``ops.dot_product_attention`` (query (B, T, N, H), key and value (B, S, K, H)): on symbolic tensors the
    ``DotProductAttention`` graph op, on arrays its values (``layers/op_attention.py``: as Keras's TensorFlow backend,
    which refuses ``flash_attention`` and ``attn_logits_soft_cap``)."""
    config = {"is_causal": bool(is_causal), "flash_attention": flash_attention,
              "attn_logits_soft_cap": attn_logits_soft_cap}
    given = [query, key, value, bias, mask]
    if any(_symbolic(v) for v in given):
        tensors, entries = [], []
        for v in given:
            entries.append(None if v is None else numpy_constant(keras_array(v)) if not _symbolic(v)
                           else {TENSOR_KEY: len(tensors)})
            tensors += [v] if _symbolic(v) else []
        kwargs = {k: e for k, e in zip(("bias", "mask"), entries[3:]) if e is not None}
        kwargs.update({} if scale is None else {"scale": float(scale)})
        return KerasOp("DotProductAttention", config)(tensors, template={"args": entries[:3], "kwargs": kwargs})
    arrays = _on_arrays("dot_product_attention", *[v for v in given if v is not None])
    normalize, _, values, _ = ATTENTION_OPS["DotProductAttention"]
    c = normalize({**config, "scale": scale, "has_bias": bias is not None, "has_mask": mask is not None},
                  [a.shape for a in arrays], "keras.ops dot_product_attention", None)
    return eager(values(arrays, c))


def _crossentropy_operands(target, output):
    return tuple(a if _symbolic(a) or is_weight_valued(a) else keras_array(a) for a in (target, output))


def binary_crossentropy(target, output, from_logits=False):
    """Keras's ``ops.binary_crossentropy``: elementwise, composed of ops as Keras's TensorFlow backend computes it
    (from probabilities clipped to ``[eps, 1 - eps]``; from logits, ``relu(x) - x t + log1p(exp(-|x|))``), so a
    custom loss trains through it. (Keras reads a sigmoid output's logits where it has them; fastgru takes the
    probabilities it is given: the same values, to float32's rounding, away from 0 and 1.)"""
    t, o = _crossentropy_operands(target, output)
    if from_logits:
        return OPS["add"](OPS["subtract"](OPS["relu"](o), OPS["multiply"](o, t)),
                          OPS["log1p"](OPS["exp"](OPS["negative"](OPS["abs"](o)))))
    o = OPS["clip"](o, _EPSILON, 1.0 - _EPSILON)
    return OPS["negative"](OPS["add"](OPS["multiply"](t, OPS["log"](o)),
                                      OPS["multiply"](OPS["subtract"](1.0, t), OPS["log"](OPS["subtract"](1.0, o)))))


def categorical_crossentropy(target, output, from_logits=False, axis=-1):
    """Keras's ``ops.categorical_crossentropy`` over ``axis``, composed of ops (probabilities normalised and clipped;
    logits through ``log_softmax``)."""
    t, o = _crossentropy_operands(target, output)
    if from_logits:
        log_p = OPS["log_softmax"](o, axis=axis)
    else:
        o = OPS["clip"](OPS["divide"](o, OPS["sum"](o, axis=axis, keepdims=True)), _EPSILON, 1.0 - _EPSILON)
        log_p = OPS["log"](o)
    return OPS["negative"](OPS["sum"](OPS["multiply"](t, log_p), axis=axis))


def sparse_categorical_crossentropy(target, output, from_logits=False, axis=-1):
    """Keras's ``ops.sparse_categorical_crossentropy`` (integer targets, a trailing 1 squeezed), composed of ops."""
    t, o = _crossentropy_operands(target, output)
    if axis not in (-1, len(o.shape) - 1):
        raise ValueError(f"sparse_categorical_crossentropy takes axis=-1 (the last), received axis={axis}")
    if len(t.shape) == len(o.shape) and t.shape[-1] == 1:
        t = OPS["squeeze"](t, axis=-1)
    if not from_logits:
        o = OPS["log"](OPS["clip"](o, _EPSILON, 1.0 - _EPSILON))
    one_hot = OPS["one_hot"](OPS["cast"](t, "int32"), int(o.shape[-1]), dtype=str(np.dtype(o.dtype)))
    return OPS["negative"](OPS["sum"](OPS["multiply"](one_hot, OPS["log_softmax"](o, axis=-1)), axis=-1))


def ctc_loss(target, output, target_length, output_length, mask_index=0):
    """Keras's ``ops.ctc_loss``: ``-log p(target | output)`` per sequence, (B,) (``fastgru.ops.ctc``). On
    symbolic tensors (a custom loss, a custom layer's ``add_loss``) the ``CTCLoss`` graph node, which training
    differentiates with respect to ``output``."""
    operands = (target, output, target_length, output_length)
    if any(_symbolic(a) for a in operands):
        return apply_op("CTCLoss", *operands, mask_index=mask_index)
    if tracing() is not None and any(is_weight_valued(a) for a in operands):
        refuse_while_traced("keras.ops ctc_loss of a weight")
    return eager(_ctc_loss_values(*operands, mask_index))


FUNCTIONS = {f.__name__: f for f in (pad, average, slice, layer_normalization, rms_normalization, segment_sum,
                                     segment_max, where, multi_hot, dot_product_attention, binary_crossentropy,
                                     categorical_crossentropy, sparse_categorical_crossentropy, ctc_loss)}


def install(module) -> None:
    """Put these on ``module`` (``fastgru.ops``), and its ``nn`` and ``numpy`` namespaces (every function of it)."""
    for name, function in FUNCTIONS.items():
        if getattr(module, name, None) in (None, OPS.get(name), _ctc_loss_values):  # (where: the table's, wrapped;
            # ctc_loss: fastgru.ops.ctc's, on arrays)
            setattr(module, name, function)
    for space in ("nn", "numpy"):
        if not hasattr(module, space):
            namespace = types.ModuleType(f"{module.__name__}.{space}", f"Keras's keras.ops.{space} names")
            namespace.__dict__.update({k: v for k, v in vars(module).items()
                                       if callable(v) and not k.startswith("_") and not isinstance(v, type)})
            setattr(module, space, namespace)
