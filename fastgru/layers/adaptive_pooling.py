"""Keras 3's adaptive pooling, ``AdaptiveAveragePooling1D``/``2D``/``3D`` and ``AdaptiveMaxPooling1D``/``2D``/
``3D``: each spatial axis pooled to ``output_size`` positions whatever its length (a sequence of any length to
a fixed number of segments before a Dense head, a spectrogram to a fixed grid).

Output position i of an axis of n positions pooled to m reads the window [floor(i n / m), ceil((i + 1) n / m))
(the quotients in float32, as Keras's TensorFlow backend computes them), so windows are ceil(n / m) or one
more long and may overlap. The axes are pooled one after another (depth, rows, columns), as Keras does; for
the mean and the maximum that is the mean or maximum over the box. A maximum's gradient flows to the first
maximum of its window. Masks are not carried on (Keras's pooling layers drop them).
"""

from __future__ import annotations

import numpy as np

from .channels import data_format_of
from .pooling_nd import _Spatial
from .registry import NONE, IntTuple, KerasContract, StrOptions, register_layer, validate_params


def windows(n: int, m: int) -> list[tuple[int, int]]:
    """(start, end) of each of the ``m`` windows over ``n`` positions."""
    i = np.arange(m, dtype=np.float32)
    starts = np.floor(i * np.float32(n) / np.float32(m)).astype(np.int64)
    ends = np.ceil((i + 1) * np.float32(n) / np.float32(m)).astype(np.int64)
    return [(min(int(s), n - 1), min(int(e), n)) for s, e in zip(starts, ends)]


class _AdaptivePooling(_Spatial):
    parameter_constraints: dict = {}

    def __init__(self, output_size, data_format=None, **kwargs):
        super().__init__(**kwargs)
        options = validate_params(f"{type(self).__name__} {self.name!r}", self.parameter_constraints,
                                  {"output_size": output_size, "data_format": data_format})
        self.output_size = options["output_size"]
        self.data_format = data_format_of(self, options["data_format"])

    def compute_output_shape(self, input_shape: tuple):
        shape = list(input_shape)
        for axis, size in zip(self._spatial_axes(), self.output_size):
            shape[axis] = size
        return tuple(shape)

    def forward(self, x, mask=None, training: bool = True):
        y = self._input(x)
        steps = []
        for k, m in enumerate(self.output_size):  # (one spatial axis after another, as Keras)
            spans = windows(y.shape[1 + k], m)
            steps.append((y, spans))
            y = np.stack([self._pool(np.take(y, range(s, e), axis=1 + k), 1 + k) for s, e in spans], axis=1 + k)
        return self._to_layout(y), steps

    def backward(self, dy, cache, need_dx: bool = True):
        if not need_dx:
            return None, []
        g = np.asarray(self._from_layout(np.asarray(dy)))
        for k in reversed(range(self.rank)):
            x, spans = cache[k]
            dx = np.zeros(x.shape, g.dtype)
            for i, (s, e) in enumerate(spans):
                index = (slice(None),) * (1 + k) + (slice(s, e),)
                dx[index] += self._spread(x[index], np.take(g, [i], axis=1 + k), 1 + k)
            g = dx
        return self._to_layout(g), []

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(output_size=self.output_size, data_format=self.data_format)
        return config


class _AdaptiveAverage(_AdaptivePooling):
    @staticmethod
    def _pool(window, axis):
        return window.mean(axis=axis)

    @staticmethod
    def _spread(window, g, axis):
        return np.broadcast_to(g / window.shape[axis], window.shape)


class _AdaptiveMax(_AdaptivePooling):
    @staticmethod
    def _pool(window, axis):
        return window.max(axis=axis)

    @staticmethod
    def _spread(window, g, axis):
        first = np.expand_dims(window.argmax(axis=axis), axis)
        out = np.zeros(window.shape, g.dtype)
        np.put_along_axis(out, first, g, axis=axis)
        return out


def _constraints(rank: int) -> dict:
    return {"output_size": [IntTuple(rank)], "data_format": [NONE, StrOptions(("channels_last", "channels_first"))]}


def _pooling_class(kind, rank: int, doc: str):
    base = _AdaptiveAverage if kind == "Average" else _AdaptiveMax
    name = f"Adaptive{kind}Pooling{rank}D"
    inputs = {1: (7, 3), 2: (5, 7, 2), 3: (4, 5, 3, 2)}[rank]
    cls = type(name, (base,), {
        "__doc__": doc, "__module__": __name__, "rank": rank, "keras": KerasContract(names=(name,)),
        "parameter_constraints": _constraints(rank),
        "contract_example": {"kwargs": {"output_size": (3, 2, 2)[:rank]}, "inputs": [inputs]}})
    return register_layer(cls)


AdaptiveAveragePooling1D = _pooling_class("Average", 1, "The mean over each of ``output_size`` windows of the steps: "
                                          "(B, T, C) -> (B, output_size, C).")
AdaptiveMaxPooling1D = _pooling_class("Max", 1, "The maximum over each of ``output_size`` windows of the steps.")
AdaptiveAveragePooling2D = _pooling_class("Average", 2, "The mean over an (output rows × output columns) grid of "
                                          "windows.")
AdaptiveMaxPooling2D = _pooling_class("Max", 2, "The maximum over an (output rows × output columns) grid of windows.")
AdaptiveAveragePooling3D = _pooling_class("Average", 3, "The mean over a (depth × rows × columns) grid of windows.")
AdaptiveMaxPooling3D = _pooling_class("Max", 3, "The maximum over a (depth × rows × columns) grid of windows.")
