"""Normalization without trained weights, Keras 3 semantics: ``UnitNormalization`` (each sample scaled
to unit L2 norm over ``axis``) and the preprocessing layer ``Normalization`` (``(x - mean) /
sqrt(variance)`` with statistics from ``adapt(data)``, from the constructor or from a file; ``invert``
maps back), and the preprocessing ``Rescaling`` (``x * scale + offset``). Each is one NumPy pass over the array
and passes masks on, as Keras does.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .base import Layer, compute_dtype
from .normalization import AxisList, _input_array, _resolve_axes
from .registry import NONE, Anything, Boolean, Constraint, KerasContract, register_layer, validate_params

#: Keras's backend.epsilon(): the smallest standard deviation Normalization divides by
_EPSILON = 1e-7


@register_layer
class UnitNormalization(Layer):
    """``x / ||x||_2`` over ``axis`` of each sample, as Keras computes it: ``x * min(rsqrt(sum(x^2)),
    1e12)`` (an all-zero slice stays zero)."""

    keras = KerasContract(names=("UnitNormalization",))
    parameter_constraints = {"axis": [AxisList()]}
    supports_masking = True
    _MAX_INV_NORM = 1e12  # 1 / Keras's epsilon 1e-12

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.__dict__.update(validate_params(f"UnitNormalization {self.name!r}", self.parameter_constraints,
                                             {"axis": axis}))

    def build(self, input_shape: tuple) -> None:
        self._axes = _resolve_axes(self, self.axis, len(input_shape))
        super().build(input_shape)


    def sized_axes(self) -> tuple:
        return ()
    def forward(self, x, mask=None, training: bool = True):
        x = _input_array(self, x)
        with np.errstate(divide="ignore"):  # an all-zero slice: 1/0 = inf, clipped to 1e12 as Keras
            inv = np.minimum(1.0 / np.sqrt(np.square(x).sum(axis=self._axes, keepdims=True)),
                             x.dtype.type(self._MAX_INV_NORM))
        return x * inv, (x, inv)

    def call(self, x, mask=None, training: bool = False):
        return self.forward(x, mask, training)[0]

    def backward(self, dy, cache, need_dx: bool = True):
        x, inv = cache
        dy = np.asarray(dy, x.dtype)
        if not need_dx:
            return None, []
        clipped = inv >= x.dtype.type(self._MAX_INV_NORM)  # the clipped factor is a constant
        s = (dy * x).sum(axis=self._axes, keepdims=True)
        dx = inv * dy - np.where(clipped, 0, inv ** 3) * x * s
        return dx, []

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": list(self.axis) if len(self.axis) > 1 else self.axis[0]}


class _KeepAxes(Constraint):
    """Normalization's ``axis``: an int, a list of ints (the axes that keep their own statistics) or
    None (one mean and variance for everything); stored as a tuple."""

    def accepts(self, value) -> bool:
        if value is None:
            return True
        items = value if isinstance(value, (list, tuple)) else [value]
        return all(isinstance(a, numbers.Integral) and not isinstance(a, (bool, np.bool_)) for a in items)

    def convert(self, value):
        if value is None:
            return ()
        return tuple(int(a) for a in (value if isinstance(value, (list, tuple)) else [value]))

    def __str__(self) -> str:
        return "an int, a list of ints or None"


@register_layer
class Normalization(Layer):
    """Keras 3's preprocessing ``Normalization``: ``(x - mean) / max(sqrt(variance), 1e-7)``, or with
    ``invert=True`` ``mean + x * max(sqrt(variance), 1e-7)``, with one mean and variance per position
    of the ``axis`` axes (broadcast over the others).

    The statistics come from the constructor (``mean=``, ``variance=``: then the layer has no weights,
    and the values are part of its config) or from :meth:`adapt` / a file: then the layer holds Keras's
    three non-trainable weights, in Keras's order, ``mean``, ``variance`` (the shape of the ``axis``
    axes) and ``count`` (an int64 scalar; Keras 3's ``adapt`` leaves it 0, tf_keras stored the number
    of values seen). Nothing is trained: the gradient only flows through to the layers before it.
    """

    keras = KerasContract(names=("Normalization",))
    parameter_constraints = {"axis": [_KeepAxes()], "mean": [NONE, Anything()], "variance": [NONE, Anything()],
                             "invert": [Boolean()]}
    weight_names = ("mean", "variance", "count")
    supports_masking = True

    def __init__(self, axis=-1, mean=None, variance=None, invert: bool = False, **kwargs):
        super().__init__(**kwargs)
        owner = f"Normalization {self.name!r}"
        checked = validate_params(owner, self.parameter_constraints,
                                  dict(axis=axis, mean=mean, variance=variance, invert=invert))
        self.axis, self.invert = checked["axis"], checked["invert"]
        self.input_mean, self.input_variance = checked["mean"], checked["variance"]  # (Keras's names)
        if (mean is None) != (variance is None):
            raise ValueError(f"{owner}: give both mean and variance, or neither (then call adapt()); received "
                             f"mean={'None' if mean is None else '...'}, "
                             f"variance={'None' if variance is None else '...'}")
        self._given = None
        if mean is not None:
            given = []
            for key, raw in (("mean", mean), ("variance", variance)):
                try:
                    value = np.asarray(raw, dtype=np.float64)
                except (TypeError, ValueError):
                    raise TypeError(f"{owner}: {key} should be a number or a (nested) list of numbers") from None
                if not np.isfinite(value).all():
                    raise ValueError(f"{owner}: {key} contains NaN or infinite values")
                given.append(value)
            if given[0].shape != given[1].shape:
                raise ValueError(f"{owner}: mean and variance must have the same shape, received {given[0].shape} "
                                 f"and {given[1].shape}")
            if given[0].ndim > len(self.axis):
                raise ValueError(f"{owner}: mean has rank {given[0].ndim}, more than the {len(self.axis)} kept "
                                 f"axes (axis={self.axis})")
            if (given[1] < 0).any():
                raise ValueError(f"{owner}: variance must not be negative")
            self._given = given

    # ---- shapes and statistics ------------------------------------------------------------------
    def build(self, input_shape: tuple) -> None:
        owner = f"Normalization {self.name!r}"
        ndim = len(input_shape)
        if any(not -ndim <= a < ndim for a in self.axis):
            raise ValueError(f"{owner}: axis {self.axis} is out of range for inputs of rank {ndim} (shape "
                             f"{tuple(input_shape)})")
        self._keep = tuple(sorted(a % ndim for a in self.axis))
        if any(input_shape[a] is None for a in self._keep):
            raise ValueError(f"{owner}: the kept axes {self.axis} need known sizes, received input shape "
                             f"{tuple(input_shape)}")
        self._reduce = tuple(a for a in range(ndim) if a not in self._keep)
        self._broadcast_shape = tuple(input_shape[a] if a in self._keep else 1 for a in range(ndim))
        stats_shape = tuple(input_shape[a] for a in self._keep)
        if self._given is None:
            self._add_weight("mean", stats_shape, "zeros", None)
            self._add_weight("variance", stats_shape, "ones", None)
            self._params["count"] = np.zeros((), np.int64)
        else:
            self._fixed = [self._expand(v, input_shape) for v in self._given]
        super().build(input_shape)


    def sized_axes(self) -> tuple:
        return self._keep
    def _expand(self, value: np.ndarray, input_shape: tuple) -> np.ndarray:
        """A given mean or variance laid out on the kept axes (trailing ones first, as Keras) and broadcast."""
        ndim = len(input_shape)
        expanded = [1] * ndim
        for i in range(1, value.ndim + 1):
            expanded[self._keep[-i]] = value.shape[-i]
        try:
            return np.broadcast_to(value.reshape(expanded), self._broadcast_shape)
        except ValueError:
            raise ValueError(f"Normalization {self.name!r}: a mean/variance of shape {value.shape} does not fit the "
                             f"kept axes {self.axis} of input shape {tuple(input_shape)}") from None

    @property
    def trainable_weights(self) -> list[np.ndarray]:
        return []

    @property
    def mean(self):
        """Keras's ``layer.mean``: once built, the mean broadcast to the input's rank (``(1, F)`` for ``(B, F)``
        inputs: the adapted or given values); before, the value given to the constructor."""
        return self._broadcast_statistic(0, "mean", self.input_mean)

    @property
    def variance(self):
        """Keras's ``layer.variance``, as :attr:`mean`."""
        return self._broadcast_statistic(1, "variance", self.input_variance)

    def _broadcast_statistic(self, k: int, name: str, given):
        if not self.built:
            return given
        value = self._fixed[k] if self._given is not None else self._params[name].reshape(self._broadcast_shape)
        return np.array(value, dtype=self.dtype)

    def _statistics(self, dtype):
        if self._given is not None:
            mean, variance = self._fixed
        else:
            mean = self._params["mean"].reshape(self._broadcast_shape)
            variance = self._params["variance"].reshape(self._broadcast_shape)
        std = np.maximum(np.sqrt(variance.astype(dtype)), dtype.type(_EPSILON))
        return mean.astype(dtype), std

    def adapt(self, data) -> None:
        """Set the mean and variance from ``data``: an array (one pass, ``np.mean``/``np.var`` over the
        reduced axes, as Keras 3 does for NumPy data) or an iterable of batches (combined with Keras's
        running update). Builds the layer from the data's shape when it is not built yet."""
        owner = f"Normalization {self.name!r}"
        if self._given is not None:
            raise ValueError(f"{owner} was given mean and variance; adapt() applies only to a layer without them")
        if isinstance(data, np.ndarray) or hasattr(data, "__array__"):
            batches, single = [np.asarray(data)], True
        elif hasattr(data, "__iter__") and not isinstance(data, (str, bytes, dict)):
            batches, single = data, False
        else:
            raise TypeError(f"{owner}.adapt() expects a numpy array or an iterable of batches, received "
                            f"{type(data).__name__}")
        total_mean = total_var = None
        total_count = 0
        for batch in batches:
            batch = np.asarray(batch[0] if isinstance(batch, tuple) else batch)
            if batch.dtype.kind not in "fiub":
                raise TypeError(f"{owner}.adapt() expects numeric data, received dtype {batch.dtype}")
            if not self.built:
                self.build((None,) + tuple(batch.shape[1:]) if batch.ndim else ())
            if batch.ndim != len(self.input_shape) or any(batch.shape[a] != self.input_shape[a] for a in self._keep):
                raise ValueError(f"{owner}.adapt(): data of shape {batch.shape} do not fit the layer's input shape "
                                 f"{self.input_shape} (kept axes {self.axis})")
            if not np.isfinite(batch).all():
                raise ValueError(f"{owner}.adapt(): the data contain NaN or infinite values")
            if single:
                total_mean, total_var = np.mean(batch, axis=self._reduce), np.var(batch, axis=self._reduce)
                break
            batch = batch.astype(np.float32 if self.dtype == np.float32 else np.float64, copy=False)
            mean, var = np.mean(batch, axis=self._reduce), np.var(batch, axis=self._reduce)
            count = math.prod(batch.shape[a] for a in self._reduce)
            total_count += count
            w_new = count / total_count
            w_old = 1.0 - w_new
            if total_mean is None:
                total_mean, total_var = np.zeros_like(mean), np.zeros_like(var)
            new_mean = total_mean * w_old + mean * w_new
            total_var = (total_var + (total_mean - new_mean) ** 2) * w_old + (var + (mean - new_mean) ** 2) * w_new
            total_mean = new_mean
        if total_mean is None:
            raise ValueError(f"{owner}.adapt() received no data (an empty iterable)")
        self._params["mean"][...] = total_mean
        self._params["variance"][...] = total_var

    # ---- computing ------------------------------------------------------------------------------
    def forward(self, x, mask=None, training: bool = True):
        x = _input_array(self, x)
        mean, std = self._statistics(x.dtype)
        y = mean + x * std if self.invert else (x - mean) / std
        return y, std

    def call(self, x, mask=None, training: bool = False):
        return self.forward(x, mask, training)[0]

    def backward(self, dy, cache, need_dx: bool = True):
        std = cache
        dy = np.asarray(dy)
        return (dy * std if self.invert else dy / std) if need_dx else None, []

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(axis=list(self.axis), invert=self.invert,
                      mean=None if self._given is None else self._given[0].tolist(),
                      variance=None if self._given is None else self._given[1].tolist())
        return config



def _scale_values(layer, option: str, value) -> float | tuple:
    """Rescaling's ``scale``/``offset``: a number, or one number per feature (the last axis)."""
    def number(v) -> bool:
        return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)

    if number(value):
        return float(value)
    values = list(value) if isinstance(value, (list, tuple)) or (hasattr(value, "shape") and np.ndim(value) == 1) \
        else None
    if values and all(number(v) for v in values):
        return tuple(float(v) for v in values)
    raise ValueError(f"Rescaling {layer.name!r}: {option} must be a finite number or a list of them (one per "
                     f"feature), received {value!r}")


@register_layer
class Rescaling(Layer):
    """``x * scale + offset`` in the compute dtype (Keras's preprocessing ``Rescaling``, such as ``1/255`` for
    8-bit images before a CRNN's convolutions); a list gives one value per feature (the last axis). Masks pass
    on."""

    keras = KerasContract(names=("Rescaling",))
    parameter_constraints = {"scale": [Anything()], "offset": [Anything()]}
    supports_masking = True
    contract_example = {"kwargs": {"scale": [0.5, 2.0, -1.0, 3.0], "offset": 0.25}}

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = _scale_values(self, "scale", scale)
        self.offset = _scale_values(self, "offset", offset)

    def build(self, input_shape: tuple) -> None:
        for option in ("scale", "offset"):
            value = getattr(self, option)
            if isinstance(value, tuple) and len(value) > 1 and input_shape[-1] not in (None, len(value)):
                raise ValueError(f"Rescaling {self.name!r}: {option} has {len(value)} values, the input "
                                 f"{input_shape[-1]} features")
        super().build(input_shape)

    def _factors(self, dtype):
        return np.asarray(self.scale, dtype), np.asarray(self.offset, dtype)

    def forward(self, x, mask=None, training: bool = True):
        x = np.asarray(x)
        if x.dtype.kind not in "fiub":
            raise TypeError(f"Rescaling {self.name!r} expects a numeric input array, received dtype {x.dtype}")
        dtype = compute_dtype(x, self)
        scale, offset = self._factors(dtype)
        return x.astype(dtype, copy=False) * scale + offset, x.shape

    def call(self, x, mask=None, training: bool = False):
        return self.forward(x, mask, training)[0]

    def backward(self, dy, cache, need_dx: bool = True):
        if not need_dx:
            return None, []
        dy = np.asarray(dy)
        scale, _ = self._factors(dy.dtype)
        return np.broadcast_to(dy * scale, cache).copy() if dy.shape != cache else dy * scale, []

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(scale=list(self.scale) if isinstance(self.scale, tuple) else self.scale,
                      offset=list(self.offset) if isinstance(self.offset, tuple) else self.offset)
        return config
