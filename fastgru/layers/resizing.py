"""Keras 3's ``Resizing`` and ``CenterCrop``: images (B, H, W, C) (``channels_first``: (B, C, H, W)) brought to a
fixed (height, width) in front of a CNN-RNN, as Keras's TensorFlow backend brings them.

Resizing samples each axis as ``tf.image.resize`` does without antialiasing (half-pixel centres): ``bilinear``
(output position ``o`` reads ``(o + 0.5)·in/out - 0.5`` between its two neighbours, clamped at the edges) and
``nearest`` (``floor((o + 0.5)·in/out)``). Both are linear maps, one matrix per axis: the forward applies them to
the rows and the columns, the backward their transposes. ``crop_to_aspect_ratio`` first crops the centre to the
target's aspect ratio and ``pad_to_aspect_ratio`` pads both sides with ``fill_value``, Keras's sizes and
offsets. CenterCrop crops the centre where the image is at least as large as the target, else crops to the
aspect ratio and resizes bilinearly (Keras's ``smart_resize``). Masks end here, as in Keras.
"""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedKerasFeature
from .base import Layer
from .channels import ChannelsLayout, data_format_of
from .registry import NONE, Anything, Boolean, Integer, KerasContract, Real, register_layer, validate_params

_METHODS = ("bilinear", "nearest")


def resize_matrix(n_in: int, n_out: int, method: str) -> np.ndarray:
    """(n_out, n_in): each output position's weights over the input positions (``tf.image.resize``'s sampling)."""
    scale = n_in / n_out
    out = np.arange(n_out, dtype=np.float64)
    matrix = np.zeros((n_out, n_in))
    if method == "nearest":
        np.put_along_axis(matrix, np.minimum(np.floor((out + 0.5) * scale), n_in - 1).astype(np.int64)[:, None], 1.0,
                          axis=1)
        return matrix
    source = (out + 0.5) * scale - 0.5
    low = np.floor(source)
    lerp = source - low
    lower = np.clip(low, 0, n_in - 1).astype(np.int64)
    upper = np.clip(np.ceil(source), 0, n_in - 1).astype(np.int64)
    rows = np.arange(n_out)
    np.add.at(matrix, (rows, lower), 1.0 - lerp)
    np.add.at(matrix, (rows, upper), lerp)
    return matrix


def aspect_box(height: int, width: int, target_height: int, target_width: int, pad: bool):
    """Keras's crop (or pad) to the target's aspect ratio: ((start row, rows), (start column, columns)); a pad's
    starts are the rows (columns) added on each side."""
    rows = int(np.float32(width * target_height) / np.float32(target_width))
    columns = int(np.float32(height * target_width) / np.float32(target_height))
    if pad:
        rows, columns = max(height, rows), max(width, columns)
        return (int(np.float32(rows - height) / 2), rows), (int(np.float32(columns - width) / 2), columns)
    rows, columns = max(min(height, rows), 1), max(min(width, columns), 1)
    return (int(np.float32(height - rows) / 2), rows), (int(np.float32(width - columns) / 2), columns)


class _Sized(ChannelsLayout, Layer):
    """What Resizing and CenterCrop share: the target size, the layout, the linear maps and their transposes."""

    def _check_rank(self, input_shape) -> None:
        if len(input_shape) != 4:
            raise ValueError(f"{type(self).__name__} {self.name!r} expects images of rank 4 ({self._layout}), received "
                             f"shape {tuple(input_shape)}")

    def build(self, input_shape: tuple) -> None:
        self._check_rank(input_shape)
        super().build(input_shape)

    def compute_output_shape(self, input_shape: tuple):
        shape = list(input_shape)
        rows, columns = self._spatial_axes()
        shape[rows], shape[columns] = self.height, self.width
        return tuple(shape)

    def compute_mask(self, x, mask=None):
        return None

    def call(self, x, mask=None, training: bool = False):
        return self.forward(x, mask, training)[0]

    def forward(self, x, mask=None, training: bool = True):
        images = self._channels_last_input(x)
        plan = self._plan(images.shape[1], images.shape[2])
        return self._to_layout(self._apply(images, plan)), (images.shape, plan)

    def backward(self, dy, cache, need_dx: bool = True):
        if not need_dx:
            return None, []
        shape, plan = cache
        dy = np.asarray(self._from_layout(np.asarray(dy)))
        (top, rows), (left, columns), matrices, pad = plan
        if matrices is not None:
            dy = np.einsum("oh,bowc->bhwc", matrices[0], dy)
            dy = np.einsum("ow,bhoc->bhwc", matrices[1], dy)
        if pad:
            dx = dy[:, top:top + shape[1], left:left + shape[2]]
        else:
            dx = np.zeros(shape, dy.dtype)
            dx[:, top:top + rows, left:left + columns] = dy
        return self._to_layout(np.ascontiguousarray(dx, dtype=dy.dtype)), []

    def _resized(self, box, method: str, pad: bool = False):
        (top, rows), (left, columns) = box
        matrices = None if (rows, columns) == (self.height, self.width) else \
            (resize_matrix(rows, self.height, method), resize_matrix(columns, self.width, method))
        return box[0], box[1], matrices, pad

    def _apply(self, images: np.ndarray, plan) -> np.ndarray:
        (top, rows), (left, columns), matrices, pad = plan
        if pad:
            filled = np.full((images.shape[0], rows, columns, images.shape[3]), self.fill_value, images.dtype)
            filled[:, top:top + images.shape[1], left:left + images.shape[2]] = images
            images = filled
        else:
            images = images[:, top:top + rows, left:left + columns]
        if matrices is None:
            return np.ascontiguousarray(images)
        out = np.einsum("oh,bhwc->bowc", matrices[0], images)
        return np.einsum("ow,bhwc->bhoc", matrices[1], out).astype(images.dtype)


@register_layer
class Resizing(_Sized):
    """Images resized to (``height``, ``width``)."""

    keras = KerasContract(names=("Resizing",), fixed={"antialias": False, "fill_mode": "constant"})
    parameter_constraints = {"height": [Integer(1)], "width": [Integer(1)], "interpolation": [Anything()],
                             "crop_to_aspect_ratio": [Boolean()], "pad_to_aspect_ratio": [Boolean()],
                             "fill_value": [Real()], "data_format": [NONE, Anything()]}
    contract_example = {"kwargs": {"height": 3, "width": 7}, "inputs": [(5, 4, 2)]}

    def __init__(self, height: int, width: int, interpolation: str = "bilinear", crop_to_aspect_ratio: bool = False,
                 pad_to_aspect_ratio: bool = False, fill_mode: str = "constant", fill_value: float = 0.0,
                 antialias: bool = False, data_format=None, **kwargs):
        super().__init__(**kwargs)
        owner = f"Resizing {self.name!r}"
        self.__dict__.update(validate_params(owner, self.parameter_constraints, dict(
            height=height, width=width, interpolation=interpolation, crop_to_aspect_ratio=crop_to_aspect_ratio,
            pad_to_aspect_ratio=pad_to_aspect_ratio, fill_value=fill_value, data_format=data_format)))
        self.data_format = data_format_of(self, self.data_format)
        if interpolation not in _METHODS:
            raise UnsupportedKerasFeature(f"{owner}: interpolation={interpolation!r} is not supported (fastgru has "
                                          f"{', '.join(_METHODS)})")
        if crop_to_aspect_ratio and pad_to_aspect_ratio:
            raise ValueError(f"{owner}: only one of pad_to_aspect_ratio and crop_to_aspect_ratio can be True")
        if fill_mode != "constant" or antialias:
            raise UnsupportedKerasFeature(f"{owner}: fill_mode={fill_mode!r} and antialias={antialias!r} are not "
                                          "supported (fastgru has fill_mode='constant', antialias=False)")

    def _plan(self, height: int, width: int):
        if self.crop_to_aspect_ratio or self.pad_to_aspect_ratio:
            box = aspect_box(height, width, self.height, self.width, self.pad_to_aspect_ratio)
            if self.pad_to_aspect_ratio:  # (Keras pads both sides by the start: the padded size is the image's + 2x)
                box = ((box[0][0], height + 2 * box[0][0]), (box[1][0], width + 2 * box[1][0]))
        else:
            box = ((0, height), (0, width))
        return self._resized(box, self.interpolation, self.pad_to_aspect_ratio)

    def get_config(self) -> dict:
        return {**super().get_config(), "height": self.height, "width": self.width,
                "interpolation": self.interpolation, "crop_to_aspect_ratio": self.crop_to_aspect_ratio,
                "pad_to_aspect_ratio": self.pad_to_aspect_ratio, "fill_mode": "constant",
                "fill_value": self.fill_value, "antialias": False, "data_format": self.data_format}


@register_layer
class CenterCrop(_Sized):
    """The centre (``height``, ``width``) of each image; a smaller image cropped to that aspect ratio and resized."""

    keras = KerasContract(names=("CenterCrop",))
    parameter_constraints = {"height": [Integer(1)], "width": [Integer(1)], "data_format": [NONE, Anything()]}
    contract_example = {"kwargs": {"height": 3, "width": 2}, "inputs": [(5, 4, 2)]}
    fill_value = 0.0

    def __init__(self, height: int, width: int, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.__dict__.update(validate_params(f"CenterCrop {self.name!r}", self.parameter_constraints,
                                             dict(height=height, width=width, data_format=data_format)))
        self.data_format = data_format_of(self, self.data_format)

    def _plan(self, height: int, width: int):
        if height >= self.height and width >= self.width:
            box = (((height - self.height) // 2, self.height), ((width - self.width) // 2, self.width))
            return box[0], box[1], None, False
        return self._resized(aspect_box(height, width, self.height, self.width, False), "bilinear")

    def get_config(self) -> dict:
        return {**super().get_config(), "height": self.height, "width": self.width, "data_format": self.data_format}
