"""Small layers: InputLayer / Input, Dropout, Masking, Embedding, Activation."""

from __future__ import annotations

import numpy as np

from .. import activations
from ..random import make_rng
from ..training.row_gradient import RowGradient
from . import registry
from .base import Layer, compute_dtype, weights_list
from .lora import LoraFrozen
from .registry import (
    ANY,
    NONE,
    ActivationName,
    Anything,
    Boolean,
    InitializerSpec,
    Integer,
    KerasContract,
    Real,
    register_layer,
    validate_params,
)


def _dimensions(shape, what: str, batch: bool = False) -> tuple:
    """``shape`` as a tuple of positive integers or None (Keras's), else a ValueError naming it."""
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, (bool, np.bool_)):
        shape = (shape,)  # (Keras takes Input(shape=3) for (3,))
    if not isinstance(shape, (list, tuple)) or not all(
            d is None or (isinstance(d, (int, np.integer)) and not isinstance(d, (bool, np.bool_)) and d > 0)
            for d in shape):
        raise ValueError(f"Input {what} must be a tuple of positive integers or None, received {shape!r}")
    return tuple(None if d is None else int(d) for d in shape)


class InputLayer(Layer):
    """Declares the input shape (without the batch axis) of a Sequential model; a layer called on it
    (Functional API) takes its symbolic tensor."""

    _fg_symbolic = True

    def __init__(self, shape=None, batch_size=None, dtype=None, name=None, batch_shape=None, **kwargs):
        if shape is None and batch_shape is None:
            shape = kwargs.pop("input_shape", None)
            batch_shape = kwargs.pop("batch_input_shape", None)
        if shape is None and batch_shape is None:
            raise ValueError("Input needs a shape, e.g. Input(shape=(timesteps, features))")
        if shape is not None and batch_shape is not None:
            raise ValueError(f"Input takes shape or batch_shape, not both (received shape={shape!r}, "
                             f"batch_shape={batch_shape!r})")
        super().__init__(name=name, dtype=dtype if dtype in (None, "float32", "float64") else None, **kwargs)
        self.input_dtype = dtype
        if batch_shape is not None:
            self.batch_shape = _dimensions(batch_shape, "batch_shape", batch=True)
        else:
            if batch_size is not None and (isinstance(batch_size, (bool, np.bool_)) or not isinstance(
                    batch_size, (int, np.integer)) or batch_size < 1):
                raise ValueError(f"Input batch_size must be a positive integer or None, received {batch_size!r}")
            self.batch_shape = (batch_size,) + _dimensions(shape, "shape")
        self._declared_input_shape = self.batch_shape
        self.build(self.batch_shape)

    @property
    def shape(self) -> tuple:
        return self.batch_shape

    def call(self, x, mask=None, training=False):
        return x

    def get_config(self) -> dict:
        return {"batch_shape": list(self.batch_shape), "dtype": self.input_dtype or "float32", "sparse": False,
                "ragged": False, "name": self.name, "optional": False}


registry.register_model("InputLayer", InputLayer)  # for fastgru.io, which imports no layer module


def Input(shape=None, batch_size=None, dtype=None, name=None, batch_shape=None) -> InputLayer:  # noqa: N802
    """Keras-style ``Input(shape=(T, D))``: use as the first entry of ``Sequential([...])``."""
    return InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, name=name, batch_shape=batch_shape)


@register_layer
class Dropout(Layer):
    """Inverted dropout, active only in training: keeps with probability 1-rate, scales by 1/(1-rate)."""

    keras = KerasContract(names=("Dropout",))
    # noise_shape is checked by the layer itself (against the input's shape, at build)
    parameter_constraints = {"rate": [Real(0.0, 1.0)], "noise_shape": [Anything()], "seed": [NONE, Integer(0)]}
    supports_masking = True

    def __init__(self, rate: float, noise_shape=None, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        options = validate_params(f"Dropout {self.name!r}", self.parameter_constraints, {"rate": rate, "seed": seed})
        self.rate = options["rate"]
        if noise_shape is not None:
            if not isinstance(noise_shape, (list, tuple)) or not all(
                    d is None or (isinstance(d, (int, np.integer)) and not isinstance(d, (bool, np.bool_)) and d > 0)
                    for d in noise_shape):
                raise ValueError(f"Dropout {self.name!r} noise_shape must be a list of positive integers or None "
                                 f"(one per input axis), received {noise_shape!r}")
            noise_shape = tuple(None if d is None else int(d) for d in noise_shape)
        self.noise_shape = noise_shape
        self.seed = seed
        self._rng = make_rng(seed)

    def build(self, input_shape: tuple) -> None:
        if self.noise_shape is not None:
            self._check_noise_shape(tuple(input_shape))
        super().build(input_shape)

    def _check_noise_shape(self, shape: tuple) -> None:
        """noise_shape must broadcast against the input: its rank, and each entry None, 1 or the input's
        size on that axis (an axis of unknown size, None, is checked when the layer is called)."""
        if len(self.noise_shape) != len(shape) or any(
                n is not None and n != 1 and d is not None and n != d for n, d in zip(self.noise_shape, shape)):
            raise ValueError(f"Dropout {self.name!r} noise_shape {self.noise_shape} does not fit the input shape "
                             f"{shape}: it needs one entry per axis, each None, 1 or the input's size")

    def call(self, x, mask=None, training: bool = False):
        return self.forward(x, mask, training)[0] if training else x

    def _noise_shape(self, x: np.ndarray) -> tuple:
        if self.noise_shape is None:
            return x.shape
        self._check_noise_shape(x.shape)  # before anything is allocated
        return tuple(x.shape[i] if s is None else s for i, s in enumerate(self.noise_shape))

    def forward(self, x, mask=None, training: bool = True):
        if not training or self.rate == 0.0:
            return x, None
        keep = self._rng.random(self._noise_shape(x)) >= self.rate
        scale = np.zeros_like(keep, dtype=compute_dtype(x, self)) if self.rate >= 1.0 else keep / (1.0 - self.rate)
        scale = scale.astype(compute_dtype(x, self))
        return x * scale, scale

    def backward(self, dy, cache, need_dx: bool = True):
        return (dy if cache is None else dy * cache), []

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(rate=self.rate, noise_shape=self.noise_shape, seed=self.seed)
        return config


@register_layer
class Masking(Layer):
    """Masks time steps whose features all equal ``mask_value``; masked steps output zeros."""

    keras = KerasContract(names=("Masking",))
    parameter_constraints = {"mask_value": [Real()]}
    supports_masking = True

    def __init__(self, mask_value: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.mask_value = validate_params(f"Masking {self.name!r}", self.parameter_constraints,
                                          {"mask_value": mask_value})["mask_value"]

    def _keep(self, x: np.ndarray) -> np.ndarray:
        return np.any(x != self.mask_value, axis=-1)

    def call(self, x, mask=None, training: bool = False):
        x = np.asarray(x)
        x = x.astype(compute_dtype(x, self), copy=False)
        return x * self._keep(x)[..., None].astype(x.dtype)

    def compute_mask(self, x, mask=None):
        return self._keep(np.asarray(x))

    def forward(self, x, mask=None, training: bool = True):
        y = self.call(x)
        return y, self._keep(np.asarray(x))[..., None].astype(y.dtype)

    def backward(self, dy, cache, need_dx: bool = True):
        return dy * cache, []

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(mask_value=self.mask_value)
        return config


@register_layer
class Embedding(LoraFrozen, Layer):
    """Integer tokens (B, T) -> vectors (B, T, output_dim); ``mask_zero`` masks token 0."""

    input_feature_axes = 0  # (token ids: a shared Embedding takes inputs of any length)
    keras = KerasContract(names=("Embedding",),
                          fixed={"lora_rank": ANY, "lora_alpha": ANY, "sparse": False, "quantization_config": ANY})
    parameter_constraints = {"input_dim": [Integer(1)], "output_dim": [Integer(1)],
                             "embeddings_initializer": [InitializerSpec()], "mask_zero": [Boolean()]}
    weight_names = ("embeddings",)
    lora_weight = "embeddings"
    contract_example = {"kwargs": {"input_dim": 7, "output_dim": 3}, "inputs": [(5,)], "tokens": 7}
    regularizer_options = {"embeddings_regularizer": "embeddings"}

    def __init__(self, input_dim: int, output_dim: int, embeddings_initializer="uniform", mask_zero: bool = False,
                 weights=None, **kwargs):
        super().__init__(**kwargs)
        self.__dict__.update(validate_params(f"Embedding {self.name!r}", self.parameter_constraints, dict(
            input_dim=input_dim, output_dim=output_dim, embeddings_initializer=embeddings_initializer,
            mask_zero=mask_zero)))
        self._rng = make_rng(None)
        # Keras's ``weights=matrix`` (or ``[matrix]``): the initial embeddings, e.g. pretrained word vectors
        self._initial = None if weights is None else weights_list(
            weights if isinstance(weights, (list, tuple)) else [weights], f"Embedding {self.name!r} weights")

    def build(self, input_shape: tuple) -> None:
        init = "random_uniform" if self.embeddings_initializer == "uniform" else self.embeddings_initializer
        self._add_weight("embeddings", (self.input_dim, self.output_dim),
                        "zeros" if self._initial is not None else init, self._rng)
        if self._initial is not None:
            self._copy_weights(self._check_weights(self._initial))
            self._initial = None
        super().build(input_shape)

    def compute_output_shape(self, input_shape: tuple):
        return tuple(input_shape) + (self.output_dim,)

    def _indices(self, x) -> np.ndarray:
        x = np.asarray(x)
        if x.dtype.kind == "f":
            if not np.all(np.mod(x, 1) == 0):
                raise TypeError(f"Embedding {self.name!r} expects integer token ids, received non-integer floats")
        elif x.dtype.kind not in "iu":
            raise TypeError(f"Embedding {self.name!r} expects integer token ids, received dtype {x.dtype}")
        idx = x.astype(np.int64)
        if idx.size and (idx.min() < -self.input_dim or idx.max() >= self.input_dim):
            raise ValueError(
                f"Embedding {self.name!r} token ids must be in [0, {self.input_dim}) (or [-{self.input_dim}, 0), "
                f"counted from the end as Keras does), received values in [{idx.min()}, {idx.max()}]"
            )
        if idx.size and idx.min() < 0:  # Keras's take wraps a negative id to row input_dim + id
            idx = np.where(idx < 0, idx + self.input_dim, idx)
        return idx

    def call(self, x, mask=None, training: bool = False):
        return self._params["embeddings"][self._indices(x)]

    def compute_mask(self, x, mask=None):
        return (np.asarray(x) != 0) if self.mask_zero else None

    def forward(self, x, mask=None, training: bool = True):
        idx = self._indices(x)
        return self._params["embeddings"][idx], idx

    #: from a tf_keras file: tf_keras's optimizers sum an Embedding's duplicate rows before their update, i.e.
    #: they take the summed (dense) gradient, where Keras 3's square each looked-up slice (RowGradient)
    keras2_semantics = False

    def use_keras2_semantics(self) -> None:
        self.keras2_semantics = True

    def backward(self, dy, cache, need_dx: bool = True):
        """The gradient as one slice per looked-up token (a RowGradient, as Keras's IndexedSlices; for a tf_keras
        model marked to be summed into the table's shape after clipping: its optimizers clip the slices, then
        deduplicate the rows, and update from the summed gradient)."""
        table = self._params["embeddings"]
        grad = RowGradient(cache.reshape(-1), dy.reshape(-1, self.output_dim).astype(table.dtype), table.shape,
                           sum_first=self.keras2_semantics)  # (tf_keras: clipped as slices, then summed)
        return None, (self.lora_trainable([grad]) if self.trainable else [])

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            input_dim=self.input_dim,
            output_dim=self.output_dim,
            embeddings_initializer=self.embeddings_initializer,
            mask_zero=self.mask_zero,
            **self.lora_config(),
            quantization_config=None,
        )
        return config


@register_layer
class Activation(Layer):
    """Applies an activation function by name (``Activation("softmax")``), as Keras's layer."""

    keras = KerasContract(names=("Activation",))
    parameter_constraints = {"activation": [NONE, ActivationName()]}
    supports_masking = True

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = validate_params(f"Activation {self.name!r}", self.parameter_constraints,
                                          {"activation": activation})["activation"]

    def call(self, x, mask=None, training: bool = False):
        x = np.asarray(x)
        return activations.apply(self.activation, x.astype(compute_dtype(x, self), copy=False))

    def forward(self, x, mask=None, training: bool = True, skip_activation: bool = False):
        """Training forward; ``skip_activation`` passes the input through (the loss takes the logits)."""
        x = np.asarray(x)
        x = x.astype(compute_dtype(x, self), copy=False)
        y = x if skip_activation else activations.apply(self.activation, x)
        return y, (x, y, skip_activation)

    def backward(self, dy, cache, need_dx: bool = True):
        x, y, skipped = cache
        return (dy if skipped else activations.gradient(self.activation, x, y, dy)), []

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(activation=self.activation)
        return config


@register_layer
class Identity(Layer):
    """Keras 3's ``Identity``: the input as it is (a placeholder layer); masks pass on."""

    keras = KerasContract(names=("Identity",))
    parameter_constraints: dict = {}
    supports_masking = True

    def call(self, x, mask=None, training: bool = False):
        x = np.asarray(x)
        return x.astype(compute_dtype(x, self), copy=False)

    def forward(self, x, mask=None, training: bool = True):
        return self.call(x), None

    def backward(self, dy, cache, need_dx: bool = True):
        return (dy if need_dx else None), []
