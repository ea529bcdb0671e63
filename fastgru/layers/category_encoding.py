"""Keras's numeric preprocessing layers for categories: ``CategoryEncoding`` (integer ids -> one-hot, multi-hot or
count rows of ``num_tokens``) and ``Discretization`` (numbers -> the index of their bin between ``bin_boundaries``,
``np.digitize``'s rule as TensorFlow's ``Bucketize``, or those indices encoded), with Keras's ``adapt`` for
``num_bins`` (its approximate quantiles: ``fastgru.ops.categorical.quantile_summary``). Ids from ``num_tokens`` up
count nowhere, as TensorFlow's bincount drops them; negative ids are refused (as its bincount refuses them). No
weights, no gradient (the outputs are counts), as in Keras."""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedKerasFeature
from ..ops.categorical import (
    batches_of,
    bin_boundaries,
    encode,
    encoded_shape,
    integer_array,
    merge_summaries,
    quantile_summary,
)
from .base import Layer
from .registry import NONE, Anything, Boolean, Integer, KerasContract, Real, StrOptions, register_layer, validate_params


def _no_sparse(owner: str, sparse: bool, output_mode: str) -> None:
    if sparse and output_mode == "int":
        raise ValueError(f"{owner}: `sparse=True` may only be used with output_mode 'one_hot', 'multi_hot' or 'count'")
    if sparse:
        raise UnsupportedKerasFeature(f"{owner}: sparse=True (a tf.SparseTensor output) is not supported: fastgru "
                                      "computes dense arrays (the same numbers with sparse=False)")


@register_layer
class CategoryEncoding(Layer):
    """Integer ids (..., n) -> one-hot (..., n, num_tokens) (a last axis of 1 replaced), or per sample a multi-hot or
    count row (..., num_tokens), in the layer's float dtype, as Keras 3's ``CategoryEncoding``."""

    keras = KerasContract(names=("CategoryEncoding",))
    parameter_constraints = {"num_tokens": [Integer(1)], "output_mode": [StrOptions(("multi_hot", "one_hot", "count"))],
                             "sparse": [Boolean()]}
    contract_example = {"kwargs": {"num_tokens": 6}, "inputs": [(3,)], "tokens": 6}
    input_feature_axes = 0
    token_dtypes = True  # (a tf_keras config's dtype names the tokens': io.keras_config)

    def __init__(self, num_tokens=None, output_mode: str = "multi_hot", sparse: bool = False, **kwargs):
        super().__init__(**kwargs)
        owner = f"CategoryEncoding {self.name!r}"
        if num_tokens is None:
            raise ValueError(f"{owner}: num_tokens must be set (for an unknown number of ids, use IntegerLookup)")
        output_mode = "multi_hot" if output_mode == "binary" else output_mode
        self.__dict__.update(validate_params(owner, self.parameter_constraints, dict(
            num_tokens=num_tokens, output_mode=output_mode, sparse=sparse)))
        _no_sparse(owner, self.sparse, self.output_mode)
        self._owner = owner

    def call(self, x, mask=None, training: bool = False):
        ids = integer_array(x, self._owner)
        if ids.size and ids.min() < 0:
            raise ValueError(f"{self._owner}: ids must be non-negative (TensorFlow's bincount refuses them), received "
                             f"{ids.min()}")
        return encode(ids, self.output_mode, self.num_tokens).astype(self.dtype)

    def compute_output_shape(self, input_shape: tuple):
        return encoded_shape(input_shape, self.output_mode, self.num_tokens)

    def forward(self, x, mask=None, training: bool = True):
        return self.call(x), None

    def backward(self, dy, cache, need_dx: bool = True):
        return None, []  # (ids take no gradient)

    def get_config(self) -> dict:
        return {**super().get_config(), "num_tokens": self.num_tokens, "output_mode": self.output_mode,
                "sparse": self.sparse}


@register_layer
class Discretization(Layer):
    """Numbers (...) -> bin indices (int32, the same shape) or their one-hot / multi-hot / count encoding over
    ``len(bin_boundaries) + 1`` bins, as Keras 3's ``Discretization``; ``adapt(data)`` finds ``num_bins`` bins
    from Keras's approximate quantiles (``epsilon``)."""

    keras = KerasContract(names=("Discretization",))
    token_dtypes = True  # (tf_keras's config dtype, int64 by default, names the bin indices': io.keras_config)
    parameter_constraints = {"bin_boundaries": [NONE, Anything()], "num_bins": [NONE, Integer(0)],
                             "epsilon": [Real(0.0, 1.0, open_low=True)],
                             "output_mode": [StrOptions(("int", "one_hot", "multi_hot", "count"))],
                             "sparse": [Boolean()]}
    contract_example = {"kwargs": {"bin_boundaries": [-0.5, 0.0, 0.7]}, "inputs": [(4,)]}
    supports_masking = False

    def __init__(self, bin_boundaries=None, num_bins=None, epsilon: float = 0.01, output_mode: str = "int",
                 sparse: bool = False, **kwargs):
        super().__init__(**kwargs)
        owner = self._owner = f"Discretization {self.name!r}"
        options = validate_params(owner, self.parameter_constraints, dict(
            num_bins=num_bins, epsilon=epsilon, output_mode=output_mode, sparse=sparse))
        self.num_bins, self.epsilon = options["num_bins"], options["epsilon"]
        self.output_mode, self.sparse = options["output_mode"], options["sparse"]
        _no_sparse(owner, self.sparse, self.output_mode)
        if bin_boundaries is not None:
            values = np.asarray(bin_boundaries, dtype=np.float64)
            if values.ndim != 1 or not np.all(np.isfinite(values)) or np.any(np.diff(values) < 0):
                raise ValueError(f"{owner}: bin_boundaries should be a sorted list of finite numbers, received "
                                 f"{bin_boundaries!r}")
            bin_boundaries = values.tolist()
        if num_bins is None and bin_boundaries is None:
            raise ValueError(f"{owner}: set either `num_bins` or `bin_boundaries`")
        self.bin_boundaries = bin_boundaries  # (both given: an adapted layer's config, as Keras's from_config takes it)
        self._summary = np.zeros((2, 0), np.float32)

    def adapt(self, data, batch_size=None, steps=None) -> None:
        """``num_bins`` bins from the data's approximate quantiles (Keras's summaries, merged batch by batch)."""
        if self.num_bins is None:
            raise ValueError(f"{self._owner}: cannot adapt a layer made with `bin_boundaries`; use `num_bins`")
        batches, _ = batches_of(data, steps, self._owner)
        summary = np.zeros((2, 0), np.float32)
        for batch in batches:
            summary = merge_summaries(quantile_summary(np.asarray(batch, dtype=np.float32), self.epsilon), summary,
                                      self.epsilon)
        self._summary = summary
        self.bin_boundaries = bin_boundaries(summary, self.num_bins).tolist()

    def call(self, x, mask=None, training: bool = False):
        if self.bin_boundaries is None:
            raise ValueError(f"{self._owner}: pass `bin_boundaries` or call adapt() before using the layer")
        x = np.asarray(x)
        if x.dtype.kind not in "fiub":
            raise TypeError(f"{self._owner} expects numbers, received dtype {x.dtype}")
        indices = np.digitize(x.astype(np.float32), np.asarray(self.bin_boundaries, np.float32)).astype(np.int64)
        if self.output_mode == "int":
            return indices.astype(np.int32)
        return encode(indices, self.output_mode, len(self.bin_boundaries) + 1).astype(self.dtype)

    def compute_output_shape(self, input_shape: tuple):
        return encoded_shape(input_shape, self.output_mode,
                             None if self.bin_boundaries is None else len(self.bin_boundaries) + 1)

    def forward(self, x, mask=None, training: bool = True):
        x = np.asarray(x)
        return self.call(x), (x.shape, x.dtype)

    def backward(self, dy, cache, need_dx: bool = True):
        # (a step function: zero almost everywhere; Keras passes no gradient)
        return (np.zeros(cache[0], cache[1]) if need_dx and cache[1].kind == "f" else None), []

    def get_config(self) -> dict:
        config = {**super().get_config(), "bin_boundaries": self.bin_boundaries, "num_bins": self.num_bins,
                  "epsilon": self.epsilon, "output_mode": self.output_mode, "sparse": self.sparse}
        config.pop("trainable")  # (Keras's Discretization takes no `trainable`)
        return config
