"""Where an image's channels are: Keras's ``data_format``, and the moves that let every spatial layer
(Conv2D/3D, their depthwise, separable and transposed forms, the 2-D/3-D poolings) compute channels last
whatever layout its inputs come in.

``channels_last`` (Keras's default): (B, *spatial, C); ``channels_first``: (B, C, *spatial). A layer mixes in
:class:`ChannelsLayout`, sets ``rank`` (its spatial axes) and ``data_format``, checks and turns its input with
:meth:`ChannelsLayout._channels_last_input` and hands results back with ``_to_layout``.
"""

from __future__ import annotations

import numpy as np

from .base import compute_dtype


def data_format_of(layer, data_format) -> str:
    """Keras's ``data_format`` option (None: ``channels_last``, Keras's default image layout)."""
    if data_format in (None, "channels_last", "channels_first"):
        return data_format or "channels_last"
    raise ValueError(f"{type(layer).__name__} {layer.name!r}: data_format must be 'channels_last' or "
                     f"'channels_first', received {data_format!r}")


class ChannelsLayout:
    """Inputs of ``rank`` spatial axes with their channels last or first (``data_format``)."""

    rank = 2
    data_format = "channels_last"

    @property
    def _first(self) -> bool:
        return self.data_format == "channels_first"

    def _channels(self, shape):
        """The channel count of a full (batch-first) shape."""
        return shape[1] if self._first else shape[-1]

    def _sizes(self, shape) -> tuple:
        """The spatial sizes of a full shape."""
        return tuple(shape[2:]) if self._first else tuple(shape[1:-1])

    def _spatial_axes(self) -> tuple:
        first = 2 if self._first else 1
        return tuple(range(first, first + self.rank))

    @property
    def _layout(self) -> str:
        axes = {1: "steps", 2: "rows, columns", 3: "depth, rows, columns"}[self.rank]
        return f"batch, channels, {axes}" if self._first else f"batch, {axes}, channels"

    def _channels_last_input(self, x, channels: int | None = None) -> np.ndarray:
        """``x`` checked (rank, numeric dtype, ``channels`` where given) as a channels-last array of the compute
        dtype."""
        label = f"{type(self).__name__} {self.name!r}"
        x = np.asarray(x)
        if x.ndim != self.rank + 2 or (channels is not None and self._channels(x.shape) != channels):
            with_channels = "" if channels is None else f" with {channels} channels"
            raise ValueError(f"{label} expects input ({self._layout}){with_channels}, received shape {x.shape}")
        if x.dtype.kind not in "fiub":
            raise TypeError(f"{label} expects a numeric input array, received dtype {x.dtype}")
        x = x.astype(compute_dtype(x, self), copy=False)
        return np.ascontiguousarray(np.moveaxis(x, 1, -1)) if self._first else x

    def _to_layout(self, y: np.ndarray) -> np.ndarray:
        """A channels-last array in the layer's layout."""
        return np.ascontiguousarray(np.moveaxis(y, -1, 1)) if self._first else y

    def _from_layout(self, dy: np.ndarray) -> np.ndarray:
        """An array in the layer's layout (an output gradient), channels last."""
        return np.moveaxis(dy, 1, -1) if self._first else dy
