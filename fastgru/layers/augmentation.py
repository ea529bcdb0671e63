"""Keras 3's image augmentation layers that models carry in front of a CNN-RNN: ``RandomFlip``,
``RandomTranslation``, ``RandomRotation``, ``RandomZoom``, ``RandomContrast`` and ``RandomBrightness`` on
(B, H, W, C) images (``channels_first``: (B, C, H, W)).

At inference each is the identity (the input cast to the compute dtype), as in Keras. In training each image of
the batch gets its own random transformation, drawn from fastgru's seeded generator (Keras's distributions, not
TensorFlow's numbers, as Dropout's masks): a flip (``horizontal_and_vertical`` flips both ways at once, one draw,
as Keras), a shift, a rotation about the centre or a zoom about it (sampled bilinearly or at the nearest pixel,
positions outside the image brought back as TensorFlow's image transform brings them for ``fill_mode``:
reflect, wrap, nearest, or constant ``fill_value``), a
contrast factor about each channel's mean or a brightness shift, both clipped to ``value_range``. Every
transformation is linear in the image (up to the clip), and its backward is its adjoint: the output gradient
flipped back, or scattered back onto the pixels each output pixel read.
"""

from __future__ import annotations

import numbers

import numpy as np

from ..errors import UnsupportedKerasFeature
from ..random import make_rng
from .base import Layer
from .channels import ChannelsLayout, data_format_of
from .registry import ANY, NONE, Anything, Integer, KerasContract, Real, StrOptions, register_layer, validate_params

_FILL = ("reflect", "wrap", "constant", "nearest")
_INTERPOLATION = ("bilinear", "nearest")


def factor_range(owner: str, option: str, factor, bounds=(-1.0, 1.0), each: bool = True) -> tuple[float, float]:
    """Keras's factor: a number ``f`` within ``bounds`` (the range (max(-|f|, low bound), |f|): (0, f) where factors
    are non-negative) or a (lower, upper) pair: with ``each``, both within ``bounds`` (the geometric layers); else,
    as Keras's base image layer, the first not above the high bound and the second not below the low one."""
    def number(v) -> bool:
        return isinstance(v, numbers.Real) and not isinstance(v, bool)

    if number(factor):
        bad = not bounds[0] <= float(factor) <= bounds[1] if not each else abs(float(factor)) > bounds[1]
        low, high = max(-abs(float(factor)), bounds[0]), abs(float(factor))
    elif isinstance(factor, (list, tuple)) and len(factor) == 2 and all(number(v) for v in factor):
        bad = (not all(bounds[0] <= v <= bounds[1] for v in factor)) if each else \
            (factor[0] > bounds[1] or factor[1] < bounds[0])
        low, high = sorted(float(v) for v in factor)
    else:
        raise ValueError(f"{owner}: {option} must be a number or a (lower, upper) pair, received {factor!r}")
    if bad:
        raise ValueError(f"{owner}: {option} must lie in [{bounds[0]}, {bounds[1]}], received {factor!r}")
    return low, high


def _map_coordinates(u: np.ndarray, n: int, mode: str) -> np.ndarray:
    """Positions outside [0, n - 1] brought back inside as TensorFlow's image transform does for ``fill_mode``
    (continuous positions, then clamped; ``constant`` leaves them: their reads take ``fill_value``)."""
    if mode == "constant":
        return u
    if n <= 1:
        return np.zeros_like(u)
    if mode == "reflect":  # (d c b a | a b c d | d c b a)
        period = 2 * n
        low = u + period * np.trunc(-u / period)
        low = np.where(low < -n, low + period, -low - 1)
        high = u - period * np.trunc(u / period)
        high = np.where(high >= n, period - high - 1, high)
        u = np.where(u < 0, low, np.where(u > n - 1, high, u))
    elif mode == "wrap":  # (a b c d | a b c d | a b c d)
        low = u + n * (np.trunc(-u / (n - 1)) + 1)
        high = u - n * np.trunc(u / (n - 1))
        u = np.where(u < 0, low, np.where(u > n - 1, high, u))
    return np.clip(u, 0, n - 1)


class _RandomImage(ChannelsLayout, Layer):
    """What the augmentation layers share: the layout, identity at inference, a transformation per image."""

    def _options(self, seed, data_format, **params) -> None:
        owner = f"{type(self).__name__} {self.name!r}"
        self.__dict__.update(validate_params(owner, self.parameter_constraints,
                                             dict(seed=seed, data_format=data_format, **params)))
        self.data_format = data_format_of(self, self.data_format)
        self._rng = make_rng(seed)

    def build(self, input_shape: tuple) -> None:
        if len(input_shape) != 4:
            raise UnsupportedKerasFeature(f"{type(self).__name__} {self.name!r}: batches of images of rank 4 "
                                          f"({self._layout}) are supported, received shape {tuple(input_shape)}")
        super().build(input_shape)

    def compute_mask(self, x, mask=None):
        return None

    def call(self, x, mask=None, training: bool = False):
        return self.forward(x, mask, training)[0]

    def forward(self, x, mask=None, training: bool = True):
        images = self._channels_last_input(x)
        if not training:
            return self._to_layout(images), None
        y, cache = self._transform(images)
        return self._to_layout(y), cache

    def backward(self, dy, cache, need_dx: bool = True):
        if not need_dx:
            return None, []
        dy = np.ascontiguousarray(self._from_layout(np.asarray(dy)))
        return self._to_layout(dy if cache is None else self._adjoint(dy, cache)), []

    def _uniform(self, low: float, high: float, n: int) -> np.ndarray:
        return self._rng.uniform(low, high, size=n) if high > low else np.full(n, low)

    def get_config(self) -> dict:
        return {**super().get_config(), "seed": self.seed, "data_format": self.data_format}


@register_layer
class RandomFlip(_RandomImage):
    """Each image flipped left-right and/or top-bottom with probability 1/2 (``mode``)."""

    keras = KerasContract(names=("RandomFlip",), fixed={"rng_type": ANY})  # (tf_keras: which RNG; randomness only)
    parameter_constraints = {"mode": [StrOptions(("horizontal", "vertical", "horizontal_and_vertical"))],
                             "seed": [NONE, Integer(0)], "data_format": [NONE, Anything()]}
    contract_example = {"kwargs": {"seed": 1}, "inputs": [(4, 5, 2)]}

    def __init__(self, mode: str = "horizontal_and_vertical", seed=None, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self._options(seed, data_format, mode=mode)

    def _flip(self, images: np.ndarray, flips: np.ndarray) -> np.ndarray:
        out = images.copy()
        axes = {"horizontal": (2,), "vertical": (1,), "horizontal_and_vertical": (1, 2)}[self.mode]
        out[flips] = np.flip(images[flips], axis=axes)
        return out

    def _transform(self, images):
        flips = self._rng.random(images.shape[0]) <= 0.5
        return self._flip(images, flips), flips

    def _adjoint(self, dy, flips):
        return self._flip(dy, flips)

    def get_config(self) -> dict:
        return {**super().get_config(), "mode": self.mode}


class _Geometric(_RandomImage):
    """Translation, rotation and zoom: each output pixel reads the image at a transformed position."""

    def _check_modes(self) -> None:
        owner = f"{type(self).__name__} {self.name!r}"
        if self.fill_mode not in _FILL:
            raise ValueError(f"{owner}: fill_mode must be one of {_FILL}, received {self.fill_mode!r}")
        if self.interpolation not in _INTERPOLATION:
            raise ValueError(f"{owner}: interpolation must be one of {_INTERPOLATION}, received "
                             f"{self.interpolation!r}")

    def _sources(self, n: int, h: int, w: int):
        """(rows, columns) (n, h, w): the position each output pixel reads."""
        raise NotImplementedError

    def _taps(self, images_shape):
        """[(batch index, row, column, weight, outside)] of every output pixel's reads (``outside``: the read lies
        off the image and takes ``fill_value``)."""
        n, h, w = images_shape[:3]
        rows, cols = self._sources(n, h, w)
        rows, cols = _map_coordinates(rows, h, self.fill_mode), _map_coordinates(cols, w, self.fill_mode)
        batch = np.broadcast_to(np.arange(n)[:, None, None], rows.shape)
        if self.interpolation == "nearest":  # (rounding halves away from zero, as std::round)
            nearest = [np.sign(v) * np.floor(np.abs(v) + 0.5) for v in (rows, cols)]
            corners = [(nearest[0].astype(np.int64), nearest[1].astype(np.int64), np.ones(rows.shape))]
        else:
            r0, c0 = np.floor(rows), np.floor(cols)
            fr, fc = rows - r0, cols - c0
            r0, c0 = r0.astype(np.int64), c0.astype(np.int64)
            corners = [(r0, c0, (1 - fr) * (1 - fc)), (r0, c0 + 1, (1 - fr) * fc), (r0 + 1, c0, fr * (1 - fc)),
                       (r0 + 1, c0 + 1, fr * fc)]
        taps = []
        for r, c, weight in corners:
            outside = (r < 0) | (r >= h) | (c < 0) | (c >= w)
            taps.append((batch, np.clip(r, 0, h - 1), np.clip(c, 0, w - 1), weight, outside))
        return taps

    def _transform(self, images):
        taps = self._taps(images.shape)
        out = np.zeros(images.shape, np.float64)
        for batch, r, c, weight, outside in taps:
            read = np.where(outside[..., None], images.dtype.type(self.fill_value), images[batch, r, c])
            out += weight[..., None] * read
        return out.astype(images.dtype), (images.shape, taps)

    def _adjoint(self, dy, cache):
        shape, taps = cache
        dx = np.zeros(shape, np.float64)
        for batch, r, c, weight, outside in taps:
            np.add.at(dx, (batch, r, c), np.where(outside[..., None], 0.0, weight[..., None] * dy))
        return dx.astype(dy.dtype)

    def _geometry_config(self) -> dict:
        return {"fill_mode": self.fill_mode, "interpolation": self.interpolation, "fill_value": self.fill_value}


_GEOMETRIC_OPTIONS = {"fill_mode": [StrOptions(_FILL)], "interpolation": [StrOptions(_INTERPOLATION)],
                      "fill_value": [Real()], "seed": [NONE, Integer(0)], "data_format": [NONE, Anything()]}


@register_layer
class RandomTranslation(_Geometric):
    """Each image shifted by ``height_factor`` x its height and ``width_factor`` x its width (drawn in their ranges)."""

    keras = KerasContract(names=("RandomTranslation",), fixed={"rng_type": ANY})
    parameter_constraints = {"height_factor": [Anything()], "width_factor": [Anything()], **_GEOMETRIC_OPTIONS}
    contract_example = {"kwargs": {"height_factor": 0.2, "width_factor": (-0.3, 0.1), "seed": 1},
                        "inputs": [(5, 6, 2)]}

    def __init__(self, height_factor, width_factor, fill_mode: str = "reflect", interpolation: str = "bilinear",
                 seed=None, fill_value: float = 0.0, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self._options(seed, data_format, height_factor=height_factor, width_factor=width_factor, fill_mode=fill_mode,
                      interpolation=interpolation, fill_value=fill_value)
        owner = f"RandomTranslation {self.name!r}"
        self._height = factor_range(owner, "height_factor", height_factor)
        self._width = factor_range(owner, "width_factor", width_factor)

    def _sources(self, n, h, w):
        shift_r = self._uniform(*self._height, n) * h
        shift_c = self._uniform(*self._width, n) * w
        rows = np.arange(h, dtype=np.float64)[None, :, None] - shift_r[:, None, None]
        cols = np.arange(w, dtype=np.float64)[None, None, :] - shift_c[:, None, None]
        return np.broadcast_to(rows, (n, h, w)), np.broadcast_to(cols, (n, h, w))

    def get_config(self) -> dict:
        return {**super().get_config(), "height_factor": self.height_factor, "width_factor": self.width_factor,
                **self._geometry_config()}


@register_layer
class RandomRotation(_Geometric):
    """Each image rotated about its centre by ``factor`` x 360 degrees (drawn in its range)."""

    keras = KerasContract(names=("RandomRotation",), fixed={"rng_type": ANY})
    parameter_constraints = {"factor": [Anything()], "value_range": [Anything()], **_GEOMETRIC_OPTIONS}
    contract_example = {"kwargs": {"factor": 0.1, "seed": 1}, "inputs": [(5, 6, 2)]}

    def __init__(self, factor, fill_mode: str = "reflect", interpolation: str = "bilinear", seed=None,
                 fill_value: float = 0.0, value_range=(0, 255), data_format=None, **kwargs):
        super().__init__(**kwargs)
        self._options(seed, data_format, factor=factor, fill_mode=fill_mode, interpolation=interpolation,
                      fill_value=fill_value, value_range=value_range)
        self._range = self.factor = factor_range(f"RandomRotation {self.name!r}", "factor", factor, each=False)

    def _sources(self, n, h, w):
        angle = self._uniform(*self._range, n) * 2.0 * np.pi
        cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
        dr = np.arange(h, dtype=np.float64)[None, :, None] - (h - 1) / 2.0
        dc = np.arange(w, dtype=np.float64)[None, None, :] - (w - 1) / 2.0
        # (TensorFlow's projective transform: output (x, y) reads x' = cos x - sin y, y' = sin x + cos y, centred)
        return cos * dr + sin * dc + (h - 1) / 2.0, cos * dc - sin * dr + (w - 1) / 2.0

    def get_config(self) -> dict:
        return {**super().get_config(), "factor": self.factor, **self._geometry_config()}


@register_layer
class RandomZoom(_Geometric):
    """Each image zoomed about its centre: ``1 + height_factor`` of its height read into it (negative: zoom in),
    ``width_factor`` the same way (None: the height's factor, keeping the aspect)."""

    keras = KerasContract(names=("RandomZoom",), fixed={"rng_type": ANY})
    parameter_constraints = {"height_factor": [Anything()], "width_factor": [NONE, Anything()], **_GEOMETRIC_OPTIONS}
    contract_example = {"kwargs": {"height_factor": (-0.3, 0.2), "seed": 1}, "inputs": [(5, 6, 2)]}

    def __init__(self, height_factor, width_factor=None, fill_mode: str = "reflect", interpolation: str = "bilinear",
                 seed=None, fill_value: float = 0.0, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self._options(seed, data_format, height_factor=height_factor, width_factor=width_factor, fill_mode=fill_mode,
                      interpolation=interpolation, fill_value=fill_value)
        owner = f"RandomZoom {self.name!r}"
        self._height = factor_range(owner, "height_factor", height_factor)
        self._width = None if width_factor is None else factor_range(owner, "width_factor", width_factor)

    def _sources(self, n, h, w):
        zoom_r = 1.0 + self._uniform(*self._height, n)
        zoom_c = zoom_r if self._width is None else 1.0 + self._uniform(*self._width, n)
        dr = np.arange(h, dtype=np.float64)[None, :, None] - (h - 1) / 2.0
        dc = np.arange(w, dtype=np.float64)[None, None, :] - (w - 1) / 2.0
        rows = zoom_r[:, None, None] * dr + (h - 1) / 2.0
        cols = zoom_c[:, None, None] * dc + (w - 1) / 2.0
        return np.broadcast_to(rows, (n, h, w)), np.broadcast_to(cols, (n, h, w))

    def get_config(self) -> dict:
        return {**super().get_config(), "height_factor": self.height_factor, "width_factor": self.width_factor,
                **self._geometry_config()}


class _Intensity(_RandomImage):
    def _value_range(self, value_range) -> tuple[float, float]:
        if not isinstance(value_range, (list, tuple)) or len(value_range) != 2 or not all(
                isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value_range):
            raise ValueError(f"{type(self).__name__} {self.name!r}: value_range must be a (low, high) pair, received "
                             f"{value_range!r}")
        return tuple(sorted(float(v) for v in value_range))

    def _clip(self, y: np.ndarray, dtype):
        low, high = self._bounds
        inside = (y >= low) & (y <= high)
        return np.clip(y, low, high).astype(dtype), inside


@register_layer
class RandomContrast(_Intensity):
    """Each image's channels moved from their mean by a factor drawn in ``[1 - lower, 1 + upper]``, clipped to
    ``value_range``."""

    keras = KerasContract(names=("RandomContrast",), fixed={"rng_type": ANY})
    parameter_constraints = {"factor": [Anything()], "value_range": [Anything()], "seed": [NONE, Integer(0)],
                             "data_format": [NONE, Anything()]}
    contract_example = {"kwargs": {"factor": 0.5, "seed": 1}, "inputs": [(4, 5, 2)]}

    def __init__(self, factor, value_range=(0, 255), seed=None, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self._options(seed, data_format, factor=factor, value_range=value_range)
        self._range = self.factor = factor_range(f"RandomContrast {self.name!r}", "factor", factor, (0.0, 1.0),
                                                   each=False)
        self._bounds = self._value_range(value_range)

    def _transform(self, images):
        factor = self._uniform(1.0 - self._range[0], 1.0 + self._range[1], images.shape[0])
        factor = factor.astype(images.dtype)[:, None, None, None]
        mean = images.mean(axis=(1, 2), keepdims=True, dtype=images.dtype)
        y, inside = self._clip((images - mean) * factor + mean, images.dtype)
        return y, (factor, inside)

    def _adjoint(self, dy, cache):
        factor, inside = cache
        passed = np.where(inside, dy, 0)
        return (passed * factor + (1 - factor) * passed.mean(axis=(1, 2), keepdims=True)).astype(dy.dtype)

    def get_config(self) -> dict:
        return {**super().get_config(), "factor": self.factor, "value_range": self.value_range}


@register_layer
class RandomBrightness(_Intensity):
    """Each image shifted by a delta drawn in ``factor`` x the width of ``value_range``, clipped to it."""

    keras = KerasContract(names=("RandomBrightness",), fixed={"rng_type": ANY})
    parameter_constraints = {"factor": [Anything()], "value_range": [Anything()], "seed": [NONE, Integer(0)],
                             "data_format": [NONE, Anything()]}
    contract_example = {"kwargs": {"factor": 0.2, "seed": 1}, "inputs": [(4, 5, 2)]}

    def __init__(self, factor, value_range=(0, 255), seed=None, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self._options(seed, data_format, factor=factor, value_range=value_range)
        self._range = self.factor = factor_range(f"RandomBrightness {self.name!r}", "factor", factor, each=False)
        self._bounds = self._value_range(value_range)

    def _transform(self, images):
        delta = self._uniform(*self._range, images.shape[0]) * (self._bounds[1] - self._bounds[0])
        y, inside = self._clip(images + delta.astype(images.dtype)[:, None, None, None], images.dtype)
        return y, inside

    def _adjoint(self, dy, inside):
        return np.where(inside, dy, 0).astype(dy.dtype)

    def get_config(self) -> dict:
        return {**super().get_config(), "factor": self.factor, "value_range": self.value_range}
