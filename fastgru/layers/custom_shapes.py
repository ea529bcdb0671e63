"""The output shape of a script's own layer (``layers.custom``): Keras finds it by tracing the call; fastgru calls
it on zeros of two sizes (:func:`probed_output_shape`), or asks the class's own ``compute_output_shape`` (given the
call's options too, and a list input's shapes spread over its parameters, as Keras's ``build`` takes them); and
:func:`build_by_run`, Keras's ``_build_by_run``: the call run once on zeros, so that the layers a custom layer holds
and builds only when called get their weights when the layer is built."""

from __future__ import annotations

import functools
import inspect

import numpy as np

from ..errors import UnsupportedKerasFeature
from ..tensor_arguments import TENSORS_KEY
from ..tracing import traced_call


def _spread(method, input_shape, options: dict) -> list:
    """``[input_shape]``, or the shapes of a list input one per parameter where the tensors went to the call's own
    parameters and ``method`` takes one shape for each (Keras's ``build(self, query_shape, values_shape)``)."""
    if options.get(TENSORS_KEY) or (isinstance(input_shape, list) and input_shape and
                                    isinstance(input_shape[0], (list, tuple))):
        positional = [p for p in list(inspect.signature(method).parameters.values())[1:]
                      if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        if len(positional) > 1 and len(positional) == len(input_shape):
            return list(input_shape)
    return [input_shape]


def _shapes(out):
    """A tuple of shapes (Keras's ``return shape, shape`` for a call returning two tensors) as fastgru's list."""
    if isinstance(out, tuple) and out and all(isinstance(s, (tuple, list)) for s in out):
        return [tuple(s) for s in out]
    return out


def _shape_only(compute_output_shape):
    """A class's own ``compute_output_shape(input_shape)``, given the call's options too (a graph passes them); the
    shapes of several outputs as a list."""
    parameters = inspect.signature(compute_output_shape).parameters.values()
    takes_options = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)

    @functools.wraps(compute_output_shape)
    def shape_only(self, input_shape, **options):
        if takes_options:
            return _shapes(compute_output_shape(self, input_shape, **options))
        return _shapes(compute_output_shape(self, *_spread(compute_output_shape, input_shape, options)))

    return shape_only


def probed_output_shape(self, input_shape, **options):
    """The output shape of ``call``: called on zeros with the unknown sizes 2, then 3; an axis whose size follows
    them is unknown (None), the batch axis is the input's. (Keras traces the call; fastgru runs it.)"""
    listed = bool(input_shape) and all(isinstance(s, (list, tuple)) for s in input_shape)  # (a list input's)
    input_shape = [tuple(s) for s in input_shape] if listed else tuple(input_shape)
    if self.__dict__.get("_fg_building") or not input_shape:
        return input_shape
    outputs = []
    for size in (2, 3):
        dims = [tuple(size if d is None else int(d) for d in s) for s in (input_shape if listed else [input_shape])]
        try:
            out = _call_on_zeros(self, dims, listed, options)
        except Exception as exc:  # noqa: BLE001  (whatever the user's call raises on zeros)
            raise UnsupportedKerasFeature(
                f"custom layer {self.name!r} ({type(self).__name__}): its output shape could not be found by calling "
                f"it on zeros of shape {dims if listed else dims[0]} ({type(exc).__name__}: {exc}); define "
                "compute_output_shape(input_shape)") from None
        outputs.append([np.shape(o) for o in out] if isinstance(out, (list, tuple)) else np.shape(out))
    first, second = outputs
    batch = input_shape[0][0] if listed else input_shape[0]
    if isinstance(first, list):
        return [_merged(a, b, batch) for a, b in zip(first, second)]
    return _merged(first, second, batch)


def _merged(a: tuple, b: tuple, batch) -> tuple:
    if len(a) != len(b):
        raise UnsupportedKerasFeature(f"a custom layer's output rank follows its input's sizes ({a} and {b}): "
                                      "define compute_output_shape(input_shape)")
    merged = tuple(x if x == y else None for x, y in zip(a, b))
    return (batch,) + merged[1:] if merged else merged


def _call_on_zeros(layer, dims: list, listed: bool, options: dict):
    """``layer.call`` on zeros of the shapes ``dims`` (eager, also inside a traced call; a call that reads its mask
    unguarded given all steps kept)."""
    with np.errstate(all="ignore"), traced_call(None):
        zeros = [np.zeros(d, layer.dtype) for d in dims]
        try:
            return layer.call(zeros if listed else zeros[0], **options)
        except Exception:  # noqa: BLE001
            if "mask" not in getattr(type(layer).call, "_fg_takes", ()):
                raise
            masks = [np.ones(d[:2] if len(d) > 2 else d, bool) for d in dims]
            return layer.call(zeros if listed else zeros[0], mask=masks if listed else masks[0], **options)


def build_by_run(layer, input_shape) -> bool:
    """Keras's ``_build_by_run``: ``layer``'s call run once on zeros of ``input_shape`` (unknown sizes 2), so that the
    layers it holds, which build when called, are built with it; False where the call fails on zeros (they build at
    the first call then, as in Keras)."""
    if not input_shape:
        return False
    listed = all(isinstance(s, (list, tuple)) for s in input_shape)
    dims = [tuple(2 if d is None else int(d) for d in s) for s in (input_shape if listed else [input_shape])]
    try:
        _call_on_zeros(layer, dims, listed, {})
    except Exception:  # noqa: BLE001  (whatever the user's call raises on zeros: Keras ignores it too)
        return False
    return True
