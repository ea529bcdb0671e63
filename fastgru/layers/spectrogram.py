"""Keras 3's ``STFTSpectrogram``: a short-time Fourier transform of each input channel, as a strided
convolution with the DFT kernels of a windowed frame (trainable, as in Keras), then the spectrogram the
``mode`` asks for.

Shapes: input (B, T, C) (``channels_first``: (B, C, T)); frames of ``frame_length`` samples every
``frame_step`` (``padding="same"``: T_out = ceil(T / step), zeros around as Keras's convolution pads);
F = fft_length // 2 + 1 bins (2F for ``mode="stft"``: the real parts, then the imaginary). Output
(B, T_out, C*F) with bin ``c*F + f`` (``channels_first``: (B, C*F, T_out)); ``expand_dims``: (B, T_out, F, C)
(``channels_first``: (B, C, T_out, F)).

Modes, from the real and imaginary parts R, I and the power P = R² + I² (ε = 1e-7, Keras's epsilon):
``real`` R, ``imag`` I, ``stft`` [R, I], ``angle`` atan2(I, R), ``psd`` P with the bins between the first
and the last doubled, ``magnitude`` sqrt(max(P, ε)), ``log`` log of the magnitude.

Weights, in Keras's order: ``real_kernel`` (unless mode is ``imag``) and ``imag_kernel`` (unless ``real``),
each (frame_length, 1, F), initialized by ``fastgru.initializers`` ``STFT``. The frames are one GEMM
against both kernels side by side; the backward is its transposes, the input gradient added back
frame by frame (one strided add per frame-step block of a frame).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from .. import initializers
from .base import Layer
from .conv import conv_output_length, padding_amounts
from .dtypes import compute_dtype
from .registry import NONE, Anything, Boolean, Integer, KerasContract, StrOptions, register_layer, validate_params

_EPSILON = 1e-7
_MODES = ("log", "magnitude", "psd", "real", "imag", "angle", "stft")


@register_layer
class STFTSpectrogram(Layer):
    """Keras 3 ``STFTSpectrogram`` (see the module docstring for shapes, modes and weights)."""

    keras = KerasContract(names=("STFTSpectrogram",))
    parameter_constraints = {
        "mode": [StrOptions(_MODES)],
        "frame_length": [Integer(1)],
        "frame_step": [NONE, Integer(1)],
        "fft_length": [NONE, Integer(1)],
        "window": [Anything()],
        "periodic": [Boolean()],
        "scaling": [NONE, StrOptions(("density", "spectrum"))],
        "padding": [StrOptions(("valid", "same"))],
        "expand_dims": [Boolean()],
        "data_format": [NONE, StrOptions(("channels_last", "channels_first"))],
    }
    weight_names = ("real_kernel", "imag_kernel")
    contract_example = {"kwargs": {"frame_length": 4, "frame_step": 2}, "inputs": [(9, 2)]}

    def __init__(self, mode: str = "log", frame_length: int = 256, frame_step: int | None = None,
                 fft_length: int | None = None, window="hann", periodic: bool = False, scaling: str | None = "density",
                 padding: str = "valid", expand_dims: bool = False, data_format: str | None = None, **kwargs):
        super().__init__(**kwargs)
        options = validate_params(f"STFTSpectrogram {self.name!r}", self.parameter_constraints, dict(
            mode=mode, frame_length=frame_length, frame_step=frame_step, fft_length=fft_length, window=window,
            periodic=periodic, scaling=scaling, padding=padding, expand_dims=expand_dims, data_format=data_format))
        self.__dict__.update(options)
        self.data_format = self.data_format or "channels_last"
        if frame_step is not None and frame_step > frame_length:
            raise ValueError(f"STFTSpectrogram {self.name!r}: frame_step should be a positive integer not greater than "
                             f"frame_length, received frame_step={frame_step}, frame_length={frame_length}")
        if fft_length is not None and fft_length < frame_length:
            raise ValueError(f"STFTSpectrogram {self.name!r}: fft_length should be at least frame_length, received "
                             f"fft_length={fft_length}, frame_length={frame_length}")
        if fft_length is not None and fft_length & (fft_length - 1):
            warnings.warn(f"STFTSpectrogram {self.name!r}: fft_length is recommended to be a power of two, received "
                          f"{fft_length}", stacklevel=2)
        if isinstance(window, np.ndarray):
            self.window = window.tolist()
        try:
            initializers.window_values(self.window, frame_length, periodic)
        except ValueError as exc:
            raise ValueError(f"STFTSpectrogram {self.name!r}: {exc}") from None
        self._step = frame_step or frame_length // 2
        if self._step < 1:
            raise ValueError(f"STFTSpectrogram {self.name!r}: frame_length {frame_length} gives no frame_step "
                             "(frame_length // 2 is 0): give frame_step")
        self._fft = fft_length or 2 ** math.ceil(math.log2(frame_length))
        self._bins = self._fft // 2 + 1

    # ---- shapes and weights ---------------------------------------------------------------
    @property
    def _first(self) -> bool:
        return self.data_format == "channels_first"

    @property
    def _kernels(self) -> tuple[str, ...]:
        return tuple(n for n in self.weight_names if n != {"real": "imag_kernel", "imag": "real_kernel"}.get(self.mode))

    def _out_bins(self) -> int:
        return 2 * self._bins if self.mode == "stft" else self._bins

    def build(self, input_shape: tuple) -> None:
        channels = input_shape[1 if self._first else -1] if len(input_shape) == 3 else None
        if channels is None:
            layout = "(batch, channels, samples)" if self._first else "(batch, samples, channels)"
            raise ValueError(f"STFTSpectrogram {self.name!r} expects input of rank 3 {layout} with a known channel "
                             f"count, received shape {tuple(input_shape)}")
        self._channels = int(channels)
        steps = input_shape[2 if self._first else 1]
        if steps is not None and self._out_steps(steps) == 0:
            raise ValueError(f"STFTSpectrogram {self.name!r}: frames of {self.frame_length} samples leave no output "
                             f"from inputs of {steps} samples (padding='valid')")
        for side in self._kernels:
            init = {"class_name": "STFT", "config": {"side": side[:4], "window": self.window, "scaling": self.scaling,
                                                     "periodic": self.periodic}}
            self._add_weight(side, (self.frame_length, 1, self._bins), init, None)
        super().build(input_shape)

    def _out_steps(self, steps: int | None) -> int | None:
        return conv_output_length(steps, self.frame_length, self.padding, self._step, 1)

    def compute_output_shape(self, input_shape: tuple):
        batch, channels = input_shape[0], input_shape[1 if self._first else -1]
        steps = self._out_steps(input_shape[2 if self._first else 1])
        bins = self._out_bins()
        if self.expand_dims:
            return (batch, channels, steps, bins) if self._first else (batch, steps, bins, channels)
        features = None if channels is None else channels * bins
        return (batch, features, steps) if self._first else (batch, steps, features)

    # ---- computing --------------------------------------------------------------------------
    def _signals(self, x: np.ndarray) -> np.ndarray:
        """``x`` checked, as (B*C, T) rows in the compute dtype."""
        x = np.asarray(x)
        if x.ndim != 3 or x.shape[1 if self._first else 2] != self._channels:
            expected = (f"(batch, {self._channels}, samples)" if self._first
                        else f"(batch, samples, {self._channels})")
            raise ValueError(f"STFTSpectrogram {self.name!r} expects input {expected}, received shape {x.shape}")
        if x.dtype.kind not in "fiub":  # (integer samples, 16-bit PCM: float32, as a model's Input casts them)
            raise TypeError(f"STFTSpectrogram {self.name!r} expects a real numeric input, received dtype {x.dtype}")
        if self._out_steps(x.shape[2 if self._first else 1]) == 0:
            raise ValueError(f"STFTSpectrogram {self.name!r}: frames of {self.frame_length} samples leave no output "
                             f"from inputs of {x.shape[2 if self._first else 1]} samples (padding={self.padding!r})")
        rows = x if self._first else x.transpose(0, 2, 1)
        return np.ascontiguousarray(rows, dtype=compute_dtype(x, self)).reshape(-1, rows.shape[2])

    def _kernel(self, dtype) -> np.ndarray:
        """(frame_length, K): the kernels side by side (real first)."""
        parts = []
        for side in self._kernels:
            kernel = self._params[side]
            if kernel.shape != (self.frame_length, 1, self._bins):
                raise ValueError(f"STFTSpectrogram {self.name!r}: {side} of shape {kernel.shape}, expected "
                                 f"{(self.frame_length, 1, self._bins)}")
            parts.append(kernel.reshape(self.frame_length, self._bins))
        return np.ascontiguousarray(np.concatenate(parts, axis=1), dtype=dtype)

    def _frames(self, signals: np.ndarray) -> tuple[np.ndarray, int]:
        """(B*C*T_out, frame_length) frames of the padded rows, and the left padding."""
        steps = signals.shape[1]
        left, right = padding_amounts(steps, self.frame_length, self.padding, self._step, 1)
        if left or right:
            signals = np.pad(signals, ((0, 0), (left, right)))
        view = np.lib.stride_tricks.sliding_window_view(signals, self.frame_length, axis=1)[:, ::self._step]
        return np.ascontiguousarray(view[:, :self._out_steps(steps)]).reshape(-1, self.frame_length), left

    def _spectrum(self, parts: np.ndarray) -> np.ndarray:
        """The mode's values from the products (N, K)."""
        bins = self._bins
        if self.mode in ("real", "imag", "stft"):
            return parts
        real, imag = parts[:, :bins], parts[:, bins:]
        if self.mode == "angle":
            return np.arctan2(imag, real)
        power = np.square(real) + np.square(imag)
        if self.mode == "psd":
            power[:, 1:bins - 1] *= 2
            return power
        magnitude = np.sqrt(np.maximum(power, power.dtype.type(_EPSILON)))
        if self.mode == "magnitude":
            return magnitude
        return np.log(np.maximum(magnitude, magnitude.dtype.type(_EPSILON)))

    def _arrange(self, values: np.ndarray, batch: int, out_steps: int) -> np.ndarray:
        """(B*C*T_out, K) -> the output layout."""
        c, k = self._channels, values.shape[1]
        values = values.reshape(batch, c, out_steps, k)
        if self._first:
            values = values if self.expand_dims else values.transpose(0, 1, 3, 2).reshape(batch, c * k, out_steps)
        else:
            values = (values.transpose(0, 2, 3, 1) if self.expand_dims
                      else values.transpose(0, 2, 1, 3).reshape(batch, out_steps, c * k))
        return np.ascontiguousarray(values)

    def _unarrange(self, dy: np.ndarray, batch: int, out_steps: int) -> np.ndarray:
        """The output gradient in the output layout -> (B*C*T_out, K)."""
        c, k = self._channels, self._out_bins()
        expected = self.compute_output_shape((batch, *((c, None) if self._first else (None, c))))
        expected = tuple(out_steps if d is None else d for d in expected)
        if dy.shape != expected:
            raise ValueError(f"STFTSpectrogram {self.name!r}: output gradient of shape {dy.shape}, expected {expected}")
        if self._first:
            dy = dy if self.expand_dims else dy.reshape(batch, c, k, out_steps).transpose(0, 1, 3, 2)
        else:
            dy = (dy.transpose(0, 3, 1, 2) if self.expand_dims
                  else dy.reshape(batch, out_steps, c, k).transpose(0, 2, 1, 3))
        return np.ascontiguousarray(dy).reshape(-1, k)

    def call(self, x, mask=None, training: bool = False):
        return self.forward(x, mask, training)[0]

    def forward(self, x, mask=None, training: bool = True):
        signals = self._signals(x)
        frames, left = self._frames(signals)
        parts = frames @ self._kernel(signals.dtype)
        y = self._spectrum(parts)
        batch, out_steps = np.shape(x)[0], self._out_steps(signals.shape[1])
        return self._arrange(y, batch, out_steps), (batch, out_steps, signals.shape, frames, left, parts, y)

    def _spectrum_gradient(self, dy: np.ndarray, parts: np.ndarray, y: np.ndarray) -> np.ndarray:
        """dL/d(products) (N, K) from dL/d(mode's values)."""
        bins = self._bins
        if self.mode in ("real", "imag", "stft"):
            return dy
        real, imag = parts[:, :bins], parts[:, bins:]
        power = np.square(real) + np.square(imag)
        if self.mode == "angle":  # d atan2(I, R) = (R dI - I dR) / P (0 where P is 0)
            scale = np.divide(dy, power, out=np.zeros_like(power), where=power > 0)
            return np.concatenate([-imag * scale, real * scale], axis=1)
        if self.mode == "psd":
            dpower = dy.copy()
            dpower[:, 1:bins - 1] *= 2
        elif self.mode == "magnitude":  # y = sqrt(max(P, eps)): dP = dy / 2y where P >= eps
            dpower = np.where(power >= _EPSILON, dy / (2 * y), 0)
        else:  # log: y = log(sqrt(max(P, eps))) (the magnitude is never below eps): dP = dy / 2P where P >= eps
            dpower = np.where(power >= _EPSILON, dy / (2 * np.maximum(power, _EPSILON)), 0)
        dpower = dpower.astype(parts.dtype, copy=False)
        return np.concatenate([2 * real * dpower, 2 * imag * dpower], axis=1)

    def backward(self, dy, cache, need_dx: bool = True):
        batch, out_steps, (rows, steps), frames, left, parts, y = cache
        dparts = self._spectrum_gradient(self._unarrange(np.asarray(dy, dtype=parts.dtype), batch, out_steps), parts, y)
        grads = []
        if self.trainable:
            dkernel = frames.T @ dparts  # (frame_length, K)
            for i in range(len(self._kernels)):
                part = dkernel[:, i * self._bins:(i + 1) * self._bins]
                grads.append(part.reshape(self.frame_length, 1, self._bins).astype(self.dtype, copy=False))
        if not need_dx:
            return None, grads
        dframes = (dparts @ self._kernel(parts.dtype).T).reshape(rows, out_steps, self.frame_length)
        return self._input_gradient(dframes, batch, steps, left), grads

    def _input_gradient(self, dframes: np.ndarray, batch: int, steps: int, left: int) -> np.ndarray:
        """The frames' gradients (B*C, T_out, frame_length) added back onto the samples, in the input's layout."""
        rows, out_steps, length = dframes.shape
        step = self._step
        blocks = -(-length // step)  # frame-step blocks of one frame
        padded = np.zeros((rows, max(out_steps + blocks, -(-(left + steps) // step)), step), dframes.dtype)
        for r in range(blocks):  # block r of frame t lands on block t + r of the samples
            width = min(step, length - r * step)
            padded[:, r:r + out_steps, :width] += dframes[:, :, r * step:r * step + width]
        dx = padded.reshape(rows, -1)[:, left:left + steps].reshape(batch, self._channels, steps)
        return np.ascontiguousarray(dx if self._first else dx.transpose(0, 2, 1))

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(mode=self.mode, frame_length=self.frame_length, frame_step=self.frame_step,
                      fft_length=self.fft_length, window=self.window, periodic=self.periodic, scaling=self.scaling,
                      padding=self.padding, data_format=self.data_format, expand_dims=self.expand_dims)
        return config
