"""3-D convolution, Keras 3's ``Conv3D``: (B, D, H, W, C_in) -> (B, D_out, H_out, W_out, filters) (``channels_first``:
(B, C, D, H, W), transposed to channels last around the computation): the head that draws the next frames after a
ConvLSTM2D stack (Keras's next-frame video prediction), or a video's front.

Computed as ``kd`` 2-D convolutions (``conv2d_forward``), one per depth tap, each over the strided depth slices of
the padded input that tap reads, their outputs summed; the backward the same way (``conv2d_backward`` per tap, its
input gradient added back onto the slices). Padding as Keras (TensorFlow's split on every axis).
"""

from __future__ import annotations

import numpy as np

from .. import activations
from .conv import _TRAINING_ONLY, conv_output_length, padding_amounts
from .conv2d import SpatialConv, conv2d_backward, conv2d_forward, conv_constraints
from .registry import KerasContract, register_layer


@register_layer
class Conv3D(SpatialConv):
    """Keras 3 ``Conv3D``. Weights: kernel (kd, kh, kw, C_in/groups, filters), bias (filters,)."""

    rank = 3
    keras = KerasContract(names=("Conv3D", "Convolution3D"), ignored=_TRAINING_ONLY, fixed={"lora_rank": None})
    parameter_constraints = conv_constraints(3)
    contract_example = {"kwargs": {"filters": 2, "kernel_size": (2, 3, 2), "padding": "same", "strides": (2, 1, 1)},
                        "inputs": [(3, 4, 5, 2)]}

    # ---- computing --------------------------------------------------------------------------
    def _depth_geometry(self, depth: int):
        k, s, d = self.kernel_size[0], self.strides[0], self.dilation_rate[0]
        return conv_output_length(depth, k, self.padding, s, d), padding_amounts(depth, k, self.padding, s, d)

    def _tap_rows(self, xp: np.ndarray, tap: int, out_depth: int) -> np.ndarray:
        """(B*D_out, H, W, C): the depth slices of the padded input that depth tap ``tap`` reads."""
        s, d = self.strides[0], self.dilation_rate[0]
        rows = xp[:, tap * d:tap * d + s * (out_depth - 1) + 1:s]
        return np.ascontiguousarray(rows).reshape((-1,) + xp.shape[2:])

    def _linear(self, x: np.ndarray):
        kernel, bias = self._weights(x.dtype)
        out_depth, (front, back) = self._depth_geometry(x.shape[1])
        xp = np.pad(x, ((0, 0), (front, back), (0, 0), (0, 0), (0, 0))) if front or back else x
        z, padded = None, []
        for tap in range(self.kernel_size[0]):
            part, kept = conv2d_forward(self._tap_rows(xp, tap, out_depth), kernel[tap], self.strides[1:],
                                        self.padding, self.dilation_rate[1:], self.groups)
            z = part if z is None else z + part
            padded.append(kept)
        z = z.reshape((x.shape[0], out_depth) + z.shape[1:])
        if bias is not None:
            z += bias
        return z, (x.shape, xp.shape, padded)

    def call(self, x, mask=None, training: bool = False):
        x = self._check_input(x)
        return self._to_layout(activations.apply(self.activation, self._linear(x)[0]))

    def forward(self, x, mask=None, training: bool = True):
        x = self._check_input(x)
        z, kept = self._linear(x)
        y = activations.apply(self.activation, z)
        return self._to_layout(y), (kept, z, y)

    def backward(self, dy, cache, need_dx: bool = True):
        (x_shape, xp_shape, padded), z, y = cache
        dy = self._from_layout(np.asarray(dy))
        if dy.shape != z.shape:
            raise ValueError(f"Conv3D {self.name!r}: output gradient of shape {dy.shape}, expected {z.shape}")
        dz = np.ascontiguousarray(activations.gradient(self.activation, z, y, dy.astype(z.dtype, copy=False)))
        kernel, _ = self._weights(dz.dtype)
        out_depth = z.shape[1]
        flat = dz.reshape((-1,) + dz.shape[2:])
        s, d = self.strides[0], self.dilation_rate[0]
        dkernel = np.empty(kernel.shape, dz.dtype)
        dxp = np.zeros(xp_shape, dz.dtype) if need_dx else None
        for tap in range(self.kernel_size[0]):
            dx_tap, dkernel[tap] = conv2d_backward(flat, padded[tap], kernel[tap], xp_shape[2:4], self.strides[1:],
                                                   self.padding, self.dilation_rate[1:], self.groups, need_dx)
            if need_dx:
                dxp[:, tap * d:tap * d + s * (out_depth - 1) + 1:s] += dx_tap.reshape(
                    (xp_shape[0], out_depth) + dx_tap.shape[1:])
        grads = [dkernel.astype(self.dtype, copy=False)]
        if self.use_bias:
            grads.append(dz.sum(axis=(0, 1, 2, 3)).astype(self.dtype, copy=False))
        if not need_dx:
            return None, grads
        front = self._depth_geometry(x_shape[1])[1][0]
        dx = dxp[:, front:front + x_shape[1]]
        return self._to_layout(dx), grads
