"""Layers that take the time axis away after a recurrent layer with ``return_sequences``:
GlobalAveragePooling1D (mask-aware, as Keras), GlobalMaxPooling1D and Flatten. Inputs (B, T, D); the global
poolings also take ``data_format="channels_first"``, (B, D, T) pooled over the last axis (keras.io's timeseries
Transformer pools its features so); Flatten's ``channels_first`` moves the channels (axis 1) last before flattening,
as Keras's, so that a channels-first model's flat features come in a channels-last model's order."""

from __future__ import annotations

import numpy as np

from .base import Layer, compute_dtype
from .registry import NONE, Anything, Boolean, KerasContract, StrOptions, register_layer, validate_params


def _check_rank3(layer: Layer, shape) -> None:
    if len(shape) != 3:
        raise ValueError(f"{type(layer).__name__} {layer.name!r} expects input of rank 3 (batch, timesteps, features), "
                         f"received shape {tuple(shape)}")


class _GlobalPooling1D(Layer):
    parameter_constraints = {"data_format": [Anything()], "keepdims": [Boolean()]}

    def __init__(self, data_format=None, keepdims: bool = False, **kwargs):
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last", "channels_first"):
            raise ValueError(f"data_format must be 'channels_last' or 'channels_first', received {data_format!r}")
        self.data_format = data_format or "channels_last"
        self.keepdims = validate_params(f"{type(self).__name__} {self.name!r}", self.parameter_constraints,
                                        {"keepdims": keepdims})["keepdims"]

    def build(self, input_shape: tuple) -> None:
        _check_rank3(self, input_shape)
        super().build(input_shape)

    def compute_output_shape(self, input_shape: tuple):
        batch, features = input_shape[0], input_shape[2 if self.data_format == "channels_last" else 1]
        if not self.keepdims:
            return (batch, features)
        return (batch, 1, features) if self.data_format == "channels_last" else (batch, features, 1)

    @property
    def _first(self) -> bool:
        return self.data_format == "channels_first"

    def _steps_first(self, x) -> np.ndarray:
        """``x`` as (B, T, D): channels_first (B, D, T) transposed."""
        x = np.asarray(x)
        if x.ndim != 3 or x.shape[2 if not self._first else 1] == 0 or x.shape[1 if not self._first else 2] == 0:
            raise ValueError(f"{type(self).__name__} {self.name!r} expects input of rank 3 with at least one step "
                             f"and one feature ({self.data_format}), received shape {x.shape}")
        x = x.astype(compute_dtype(x, self), copy=False) if self.dtype == np.float64 else x  # (a float64 policy)
        return np.ascontiguousarray(x.transpose(0, 2, 1)) if self._first else x

    def _as_given(self, dx: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(dx.transpose(0, 2, 1)) if self._first else dx

    def compute_mask(self, x, mask=None):
        return None

    def call(self, x, mask=None, training: bool = False):
        return self.forward(x, mask, training)[0]

    def _shape_output(self, y: np.ndarray) -> np.ndarray:
        if not self.keepdims:
            return y
        return y[:, :, None] if self._first else y[:, None, :]

    def _dy(self, dy: np.ndarray) -> np.ndarray:
        if not self.keepdims:
            return dy
        return dy[:, :, 0] if self._first else dy[:, 0, :]

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(data_format=self.data_format, keepdims=self.keepdims)
        return config


@register_layer
class GlobalAveragePooling1D(_GlobalPooling1D):
    """Mean over the time axis: (B, T, D) -> (B, D). With a mask, the mean of the unmasked steps
    (as Keras: a sequence with every step masked gives 0/0 = NaN)."""

    accepts_mask_argument = True  # (its Keras call takes mask=: graph.symbolic_call)

    keras = KerasContract(names=("GlobalAveragePooling1D", "GlobalAvgPool1D"))

    supports_masking = True

    def forward(self, x, mask=None, training: bool = True):
        x = self._steps_first(x)
        if mask is None:
            return self._shape_output(x.mean(axis=1)), (x.shape, None, None)
        m = np.asarray(mask, dtype=x.dtype)
        if m.shape != x.shape[:2]:
            raise ValueError(f"GlobalAveragePooling1D {self.name!r}: the mask must have shape (batch, steps) = "
                             f"{x.shape[:2]}, received {m.shape}")
        m = m[:, :, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            count = m.sum(axis=1)
            y = (np.where(m > 0, x, 0) * m).sum(axis=1) / count
        return self._shape_output(y), (x.shape, m, count)

    def backward(self, dy, cache, need_dx: bool = True):
        shape, m, count = cache
        dy = self._dy(np.asarray(dy))
        if m is None:
            return self._as_given(np.broadcast_to(dy[:, None, :] / dy.dtype.type(shape[1]), shape).copy()), []
        with np.errstate(invalid="ignore", divide="ignore"):
            return self._as_given((dy / count)[:, None, :] * m), []


@register_layer
class GlobalMaxPooling1D(_GlobalPooling1D):
    """Maximum over the time axis: (B, T, D) -> (B, D) (masks are not used, as in Keras). The
    gradient is shared equally by tied maxima, as TensorFlow's."""

    keras = KerasContract(names=("GlobalMaxPooling1D", "GlobalMaxPool1D"))

    def forward(self, x, mask=None, training: bool = True):
        x = self._steps_first(x)
        y = x.max(axis=1)
        return self._shape_output(y), (x, y)

    def backward(self, dy, cache, need_dx: bool = True):
        x, y = cache
        hits = (x == y[:, None, :]).astype(x.dtype)
        return self._as_given(hits * (self._dy(np.asarray(dy)) / hits.sum(axis=1))[:, None, :]), []


@register_layer
class Flatten(Layer):
    """(B, T, D) -> (B, T*D) (any rank: everything after the batch axis in one; ``channels_first``: axis 1 moved
    last first)."""

    keras = KerasContract(names=("Flatten",))
    parameter_constraints = {"data_format": [NONE, StrOptions(("channels_last", "channels_first"))]}

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = validate_params(f"Flatten {self.name!r}", self.parameter_constraints,
                                           {"data_format": data_format})["data_format"] or "channels_last"

    def compute_output_shape(self, input_shape: tuple):
        rest = input_shape[1:]
        size = None if any(d is None for d in rest) else int(np.prod(rest, dtype=np.int64))
        return (input_shape[0], size)

    def compute_mask(self, x, mask=None):
        return None

    def _channels_moved(self, x: np.ndarray) -> np.ndarray:
        return np.moveaxis(x, 1, -1) if self.data_format == "channels_first" and x.ndim > 2 else x

    def call(self, x, mask=None, training: bool = False):
        return self.forward(x, mask, training)[0]

    def forward(self, x, mask=None, training: bool = True):
        x = np.asarray(x)
        return self._channels_moved(x).reshape(x.shape[0], int(np.prod(x.shape[1:]))), x.shape

    def backward(self, dy, cache, need_dx: bool = True):
        dy = np.asarray(dy)
        if self.data_format == "channels_first" and len(cache) > 2:  # the moved layout, then axis -1 back to 1
            return np.moveaxis(dy.reshape((cache[0],) + tuple(cache[2:]) + (cache[1],)), -1, 1), []
        return dy.reshape(cache), []

    def get_config(self) -> dict:
        config = super().get_config()
        config["data_format"] = self.data_format
        return config
