"""The options of the lookup layers (``fastgru.layers.lookup``) as their ``parameter_constraints`` declare them."""

from __future__ import annotations

import numbers

import numpy as np

from ..errors import UnsupportedKerasFeature
from .registry import NONE, Anything, Boolean, Constraint, Integer, StrOptions

OUTPUT_MODES = ("int", "one_hot", "multi_hot", "count", "tf_idf")


class TokenList(Constraint):
    """A vocabulary or weights given as a list, tuple or 1-D array (a file path is taken by the constructor only:
    a model file's config never names a file to read)."""

    def accepts(self, value) -> bool:
        return isinstance(value, (list, tuple)) or (isinstance(value, np.ndarray) and value.ndim == 1)

    def __str__(self) -> str:
        return "a list of tokens"


class _Token(Constraint):
    """A string token (StringLookup) or an integer one (IntegerLookup)."""

    def __init__(self, kind: str):
        self.kind = kind

    def accepts(self, value) -> bool:
        if self.kind == "string":
            return isinstance(value, str)
        return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))

    def convert(self, value):
        return value if self.kind == "string" else int(value)

    def __str__(self) -> str:
        return "a string" if self.kind == "string" else "an integer"


#: the widest row a lookup's one-hot, multi-hot, count or TF-IDF output may have (its TF-IDF weights are as many)
MAX_ENCODED_WIDTH = 1 << 24


def lookup_constraints(kind: str) -> dict:
    token = _Token(kind)
    return {"max_tokens": [NONE, Integer()], "num_oov_indices": [Integer(0)], "mask_token": [NONE, token],
            "oov_token": [token], "invert": [Boolean()], "output_mode": [StrOptions(OUTPUT_MODES)],
            "pad_to_max_tokens": [Boolean()], "sparse": [Boolean()],
            "oov_method": [StrOptions(("floormod", "farmhash"))], "salt": [NONE, Anything()],
            "vocabulary_size": [NONE, Integer(0)], "idf_weights": [NONE, TokenList()],
            "vocabulary": [NONE, TokenList()], "has_input_vocabulary": [NONE, Boolean()]}


def check_lookup_options(layer, owner: str) -> None:
    """Keras's checks of a lookup layer's options (``layer``: its options set), and fastgru's refusals."""
    if layer.max_tokens is not None and layer.max_tokens <= 1:
        raise ValueError(f"{owner}: if set, `max_tokens` must be greater than 1, received {layer.max_tokens}")
    if layer.pad_to_max_tokens and layer.max_tokens is None:
        raise ValueError(f"{owner}: pad_to_max_tokens=True needs `max_tokens`")
    if layer.invert and layer.output_mode != "int":
        raise ValueError(f"{owner}: `output_mode` must be 'int' when `invert` is True, received "
                         f"{layer.output_mode!r}")
    if layer.sparse:
        if layer.output_mode == "int":
            raise ValueError(f"{owner}: `sparse` may only be True with output_mode 'one_hot', 'multi_hot', "
                             "'count' or 'tf_idf'")
        raise UnsupportedKerasFeature(f"{owner}: sparse=True (a tf.SparseTensor output) is not supported: fastgru "
                                      "computes dense arrays (the same numbers with sparse=False)")
    if layer.input_idf_weights is not None and layer.output_mode != "tf_idf":
        raise ValueError(f"{owner}: `idf_weights` should only be set if `output_mode` is 'tf_idf'")
    width = (layer.max_tokens if layer.pad_to_max_tokens else 0) + layer.num_oov_indices
    if layer.output_mode != "int" and width > MAX_ENCODED_WIDTH:
        raise UnsupportedKerasFeature(f"{owner}: output_mode={layer.output_mode!r} with num_oov_indices="
                                      f"{layer.num_oov_indices}, max_tokens={layer.max_tokens} and pad_to_max_tokens="
                                      f"{layer.pad_to_max_tokens} makes rows of at least {width} values; fastgru "
                                      f"encodes at most {MAX_ENCODED_WIDTH} per row")
    if layer.salt is not None:
        raise UnsupportedKerasFeature(f"{owner}: a salt (TensorFlow's keyed SipHash for out-of-vocabulary buckets) is "
                                      "not supported; fastgru computes the unsalted FarmHash buckets")
