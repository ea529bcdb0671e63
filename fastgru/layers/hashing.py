"""Keras's ``Hashing``: strings or integers -> a bucket in ``[0, num_bins)`` by TensorFlow's ``Fingerprint64``
(``tf.strings.to_hash_bucket_fast``; integers hashed as their decimal strings, floats first truncated to integers,
as Keras's TensorFlow backend does), ``mask_value`` to bucket 0 (the others then in ``[1, num_bins)``), and Keras's
one-hot / multi-hot / count encodings. A salted (SipHash) layer is refused by name. No weights, no gradient."""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedKerasFeature
from ..ops.categorical import encode, encoded_shape, string_array
from ..ops.farmhash import hash_buckets
from .base import Layer
from .registry import NONE, Anything, Boolean, Integer, KerasContract, StrOptions, register_layer, validate_params


@register_layer
class Hashing(Layer):
    """Values (...) -> hashed bins (int64, the same shape) or their encoding over ``num_bins``, as Keras 3's
    ``Hashing`` computes them on TensorFlow."""

    keras = KerasContract(names=("Hashing",))
    parameter_constraints = {"num_bins": [Integer(1)], "mask_value": [NONE, Anything()], "salt": [NONE, Anything()],
                             "output_mode": [StrOptions(("int", "one_hot", "multi_hot", "count"))],
                             "sparse": [Boolean()]}
    contract_example = {"kwargs": {"num_bins": 7}, "inputs": [(3,)], "strings": ["red", "green", "blue", "", "Über"]}
    input_feature_axes = 0
    token_dtypes = True  # (Keras's config names the int64 output: io.keras_config)

    def __init__(self, num_bins=None, mask_value=None, salt=None, output_mode: str = "int", sparse: bool = False,
                 **kwargs):
        if kwargs.get("dtype") in ("int64", "int32"):
            kwargs["dtype"] = None  # (Keras's int output's dtype: the encodings' float is float32)
        super().__init__(**kwargs)
        owner = self._owner = f"Hashing {self.name!r}"
        output_mode = "multi_hot" if output_mode == "binary" else output_mode
        self.__dict__.update(validate_params(owner, self.parameter_constraints, dict(
            num_bins=num_bins, mask_value=mask_value, salt=salt, output_mode=output_mode, sparse=sparse)))
        if self.sparse:
            raise UnsupportedKerasFeature(f"{owner}: sparse=True (a tf.SparseTensor output) is not supported")
        if self.salt is not None:
            raise UnsupportedKerasFeature(f"{owner}: a salt (TensorFlow's keyed SipHash, to_hash_bucket_strong) is "
                                          "not supported; fastgru computes the unsalted FarmHash buckets")
        if isinstance(self.mask_value, (bool, np.bool_)) or not (
                self.mask_value is None or isinstance(self.mask_value, (str, int, np.integer))):
            raise ValueError(f"{owner}: mask_value should be None, a string or an integer, received {mask_value!r}")

    def _bins(self, x) -> np.ndarray:
        """Each value's bin (int64, the input's shape)."""
        a = np.asarray(x)
        if a.dtype.kind == "U" and not isinstance(x, np.ndarray):
            a = np.asarray(x, dtype=object)  # (a list of texts: kept whole, trailing NULs too)
        if a.dtype.kind in "USO":
            values = string_array(a, self._owner)
            flat = values.ravel().tolist()
            mask = None if self.mask_value is None else (values == str(self.mask_value))
        elif a.dtype.kind in "iuf":
            mask = None if not isinstance(self.mask_value, (int, np.integer)) else (a == self.mask_value)
            values = a.astype(np.int64)  # (floats truncated, as Keras's cast)
            flat = [str(v) for v in values.ravel().tolist()]  # (tf.as_string: the decimal digits)
        else:
            raise TypeError(f"{self._owner} expects strings or numbers, received dtype {a.dtype}")
        bins = self.num_bins - 1 if self.mask_value is not None and self.num_bins > 1 else self.num_bins
        out = np.array(hash_buckets(flat, bins), dtype=np.int64).reshape(values.shape)
        if self.mask_value is not None and self.num_bins > 1:
            out = np.where(np.asarray(mask, bool), 0, out + 1)
        return out

    def call(self, x, mask=None, training: bool = False):
        bins = self._bins(x)
        if self.output_mode == "int":
            return bins
        if self.output_mode == "one_hot" and bins.ndim > 1 and bins.shape[-1] == 1:
            bins = bins[..., 0]
        return encode(bins, self.output_mode, self.num_bins).astype(self.dtype)

    def compute_output_shape(self, input_shape: tuple):
        return encoded_shape(input_shape, self.output_mode, self.num_bins)

    def forward(self, x, mask=None, training: bool = True):
        return self.call(x), None

    def backward(self, dy, cache, need_dx: bool = True):
        return None, []  # (hashed bins take no gradient)

    def get_config(self) -> dict:
        config = {**super().get_config(), "num_bins": self.num_bins, "salt": self.salt, "mask_value": self.mask_value,
                  "output_mode": self.output_mode, "sparse": self.sparse}
        if self.output_mode == "int":
            config["dtype"] = "int64"  # (Keras's: an int output's dtype must be an integer one)
        return config
