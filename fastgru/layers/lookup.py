"""Keras's lookup layers, ``StringLookup`` and ``IntegerLookup``: tokens to indices through a vocabulary (or, with
``invert``, indices back to tokens), with Keras 3's layout of indices (the mask token at 0 in ``"int"`` mode, then
``num_oov_indices`` out-of-vocabulary indices, then the vocabulary in its order) and its output modes ``"int"``,
``"one_hot"``, ``"multi_hot"``, ``"count"`` and ``"tf_idf"``.

The vocabulary comes from the constructor (a list, or the path of a text file of one token per line), from
``adapt(data)`` (tokens sorted by count, ties by the token, both descending, as Keras sorts them) or from a model
file: its config, or the ``vocabulary.txt`` Keras writes among a ``.keras`` archive's assets
(``fastgru.io.keras_assets``). A lookup goes through a dictionary of the vocabulary; strings are Python objects
(a fixed-width NumPy ``"U"`` array would drop trailing NULs). Several OOV indices take TensorFlow's FarmHash
buckets (``fastgru.ops.farmhash``), or ``floormod`` for integers. Nothing here is trained: the layers pass no
gradient, as Keras's integer outputs pass none. ``get_config`` carries the vocabulary (and a TF-IDF layer's
weights) also after ``adapt``, so that a saved or pickled model keeps it in every format; Keras reads such a config
as a layer built with ``vocabulary=``.
"""

from __future__ import annotations

import collections
import numbers
import os

import numpy as np

from ..ops.categorical import (
    batches_of,
    encode,
    encoded_shape,
    integer_array,
    inverse_document_frequency,
    object_array,
    ranked_tokens,
    read_vocabulary_file,
    string_array,
    token_list,
)
from ..ops.farmhash import hash_buckets
from .base import Layer
from .lookup_options import check_lookup_options, lookup_constraints
from .registry import (
    KerasContract,
    StrOptions,
    check_value,
    register_layer,
    validate_params,
)

_ALIASES = {"binary": "multi_hot", "tf-idf": "tf_idf"}
#: Keras's mask value outside ``"int"`` mode: an index no encoding counts (bincount drops it)
_DROPPED = np.iinfo(np.int64).max


class IndexLookup(Layer):
    """What StringLookup and IntegerLookup share (Keras's ``IndexLookup``); see the module docstring."""

    vocabulary_kind = "string"
    token_dtypes = True  # (a tf_keras config's dtype names the tokens': io.keras_config)
    input_feature_axes = 0  # (token ids: any shape)
    _default_oov = "[UNK]"

    def __init__(self, max_tokens=None, num_oov_indices: int = 1, mask_token=None, oov_token=None, vocabulary=None,
                 idf_weights=None, invert: bool = False, output_mode: str = "int", pad_to_max_tokens: bool = False,
                 sparse: bool = False, oov_method: str = "floormod", salt=None, vocabulary_size=None,
                 has_input_vocabulary=None, **kwargs):
        kwargs.pop("vocabulary_dtype", None)  # (IntegerLookup's, checked there)
        super().__init__(**kwargs)
        owner = self._owner = f"{type(self).__name__} {self.name!r}"
        output_mode = _ALIASES.get(output_mode, output_mode) if isinstance(output_mode, str) else output_mode
        path = vocabulary if isinstance(vocabulary, (str, os.PathLike)) else None
        options = validate_params(owner, self.parameter_constraints, dict(
            max_tokens=max_tokens, num_oov_indices=num_oov_indices, mask_token=mask_token,
            oov_token=self._default_oov if oov_token is None else oov_token, invert=invert, output_mode=output_mode,
            pad_to_max_tokens=pad_to_max_tokens, sparse=sparse, oov_method=oov_method, salt=salt,
            vocabulary_size=vocabulary_size, idf_weights=idf_weights,
            vocabulary=None if path is not None else vocabulary))
        self.max_tokens, self.num_oov_indices = options["max_tokens"], options["num_oov_indices"]
        self.mask_token, self.oov_token = options["mask_token"], options["oov_token"]
        self.invert, self.output_mode = options["invert"], options["output_mode"]
        self.pad_to_max_tokens, self.sparse = options["pad_to_max_tokens"], options["sparse"]
        self.oov_method, self.salt = options["oov_method"], options["salt"]
        self.input_vocabulary = None if vocabulary is None or path is not None else token_list(vocabulary)
        self.input_idf_weights = None if idf_weights is None else [float(v) for v in np.ravel(idf_weights)]
        check_lookup_options(self, owner)
        self._frozen_size = options["vocabulary_size"]
        self._has_input_vocabulary = (vocabulary is not None) if has_input_vocabulary is None \
            else bool(has_input_vocabulary)
        self._tokens = None  # the vocabulary without its special tokens, in index order
        self._index = {} if self.mask_token is None else {self.mask_token: 0 if self.output_mode == "int" else _DROPPED}
        self._idf = None  # (tf_idf) one weight per output column
        if self.output_mode == "tf_idf" and self._has_input_vocabulary and idf_weights is None:
            raise ValueError(f"{owner}: with `vocabulary`, output_mode 'tf_idf' needs `idf_weights` too")
        if path is not None:
            if self.output_mode == "tf_idf":
                raise ValueError(f"{owner}: output_mode 'tf_idf' does not support loading a vocabulary from a file")
            self.set_vocabulary(read_vocabulary_file(path, owner, self.vocabulary_kind))
        elif vocabulary is not None:
            self.set_vocabulary(vocabulary, idf_weights)
        elif idf_weights is not None:  # (a file's config: the vocabulary follows from its assets)
            self._idf = np.asarray(self.input_idf_weights, self.dtype)

    # ---- the index layout ------------------------------------------------------------------
    def _oov_start(self) -> int:
        return 1 if self.mask_token is not None and self.output_mode == "int" else 0

    def _token_start(self) -> int:
        return self._oov_start() + self.num_oov_indices

    def vocabulary_size(self) -> int | None:
        """The number of indices (special ones included); None before the layer has a vocabulary."""
        if self._tokens is None:
            return self._frozen_size
        return len(self._tokens) + self._token_start()

    def _depth(self) -> int | None:
        return self.max_tokens if self.pad_to_max_tokens else self.vocabulary_size()

    def get_vocabulary(self, include_special_tokens: bool = True) -> list:
        """The vocabulary in index order (with the mask and OOV tokens first unless ``include_special_tokens``
        is False), as Keras's ``get_vocabulary``."""
        tokens = [] if self._tokens is None else self._tokens.tolist()
        if not include_special_tokens:
            return tokens
        return self._special_tokens() + tokens

    def _special_tokens(self) -> list:
        return [self.mask_token] * self._oov_start() + [self.oov_token] * self.num_oov_indices

    def set_vocabulary(self, vocabulary, idf_weights=None) -> None:
        """Set the vocabulary (a list, tuple or 1-D array of tokens, which may start with the special tokens in
        their order) and, for ``"tf_idf"``, its inverse document frequencies, checked as Keras checks them."""
        owner = self._owner
        if self.output_mode == "tf_idf" and idf_weights is None:
            raise ValueError(f"{owner}: `idf_weights` must be set if output_mode is 'tf_idf'")
        if self.output_mode != "tf_idf" and idf_weights is not None:
            raise ValueError(f"{owner}: `idf_weights` should only be set if output_mode is 'tf_idf'")
        values = self._as_tokens(token_list(vocabulary))
        tokens, found_special = self._checked_tokens(values)
        start = self._token_start()
        idf = None
        if self.output_mode == "tf_idf":
            idf = np.asarray(idf_weights, dtype=np.float64)
            if idf.ndim != 1 or len(idf) != len(values):
                raise ValueError(f"{owner}: `idf_weights` must be a 1-D list as long as the vocabulary ({len(values)}),"
                                 f" received shape {idf.shape}")
            front = (0, 0.0) if found_special else (start, float(np.average(idf)))
            back = self.max_tokens - front[0] - len(idf) if self.pad_to_max_tokens else 0
            idf = np.pad(idf, (front[0], back), constant_values=(front[1], 0.0))
        self._set_tokens(tokens, idf)

    def _checked_tokens(self, values: list) -> tuple[list, bool]:
        """(The tokens without the special ones, whether ``values`` started with those), checked as Keras checks a
        vocabulary: not empty, no repeated token, no special token among them, at most ``max_tokens`` in all."""
        owner, start = self._owner, self._token_start()
        if not values:
            raise ValueError(f"{owner}: cannot set an empty vocabulary")
        # (the special tokens listed only when the vocabulary is as long: num_oov_indices may be huge)
        found_special = len(values) >= start and values[:start] == self._special_tokens()
        tokens = values[start:] if found_special else values
        repeated = [t for t, n in collections.Counter(tokens).items() if n > 1]
        if repeated:
            raise ValueError(f"{owner}: the vocabulary repeats {repeated[:10]}: make its tokens unique")
        for token, what in ((self.mask_token, "mask"), (self.oov_token if self.invert else None, "OOV")):
            if token is not None and token in tokens:
                special = [self.mask_token] * self._oov_start() + [self.oov_token] * min(self.num_oov_indices, 4)
                raise ValueError(f"{owner}: the {what} token {token!r} is in the vocabulary: leave the special tokens "
                                 f"out, or give them only at its start in this order: {special}"
                                 f"{' ...' if self.num_oov_indices > 4 else ''}")
        if self.max_tokens is not None and start + len(tokens) > self.max_tokens:
            raise ValueError(f"{owner}: a vocabulary of {start + len(tokens)} tokens is larger than max_tokens="
                             f"{self.max_tokens}")
        return tokens, found_special

    def _as_tokens(self, values: list) -> list:
        if self.vocabulary_kind == "string":
            out = [v.decode("utf-8") if isinstance(v, bytes) else v for v in values]
            if not all(isinstance(v, str) for v in out):
                raise TypeError(f"{self._owner}: the vocabulary should hold strings")
            return out
        if not all(isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_)) for v in values):
            raise TypeError(f"{self._owner}: the vocabulary should hold integers")
        return [int(v) for v in values]

    def _set_tokens(self, tokens: list, idf) -> None:
        self._tokens = object_array(tokens, (len(tokens),)) if self.vocabulary_kind == "string" \
            else np.array(tokens, dtype=np.int64).reshape(-1)
        self._index = dict(zip(tokens, range(self._token_start(), self._token_start() + len(tokens))))
        if self.mask_token is not None:  # (never a token: set_vocabulary refuses it)
            self._index[self.mask_token] = 0 if self.output_mode == "int" else _DROPPED
        if idf is not None:
            self._idf = np.asarray(idf, self.dtype)
        size = self.vocabulary_size()
        if self.output_mode != "int" and not self.pad_to_max_tokens:
            self._frozen_size = size
        if self._idf is not None and self._depth() is not None and len(self._idf) != self._depth():
            raise ValueError(f"{self._owner}: {len(self._idf)} idf weights for {self._depth()} output columns")

    # ---- adapt --------------------------------------------------------------------------------
    def adapt(self, data, batch_size=None, steps=None) -> None:
        """Learn the vocabulary from ``data`` (an array, a list, or an iterable of batches), as Keras: every
        token counted, the mask and OOV tokens left out, sorted by count then by the token (both descending),
        the first ``max_tokens`` kept; for ``"tf_idf"`` each token's ``log(1 + documents / (1 + documents
        holding it))``, rows being documents."""
        batches, one_array = batches_of(data, steps, self._owner)
        self.learn_from_rows(row for batch in batches for row in self._adapt_rows(batch, one_array))

    def learn_from_rows(self, rows) -> None:
        """``adapt`` from documents: an iterable of lists of tokens."""
        if self._has_input_vocabulary:
            raise ValueError(f"Cannot adapt layer {self.name!r} after setting a static vocabulary via the "
                             "`vocabulary` argument or `set_vocabulary()`")
        counts, documents, n_documents = collections.Counter(), collections.Counter(), 0
        for row in rows:
            counts.update(row)
            if self.output_mode == "tf_idf":
                documents.update(set(row))
            n_documents += 1
        self._learn(counts, documents, n_documents)

    def _adapt_rows(self, batch, one_array: bool) -> list:
        """A batch as rows of tokens, each a document. As in Keras, a 1-D array given to ``adapt`` holds one
        token per document; a 1-D batch of an iterable is one document."""
        keys = self._keys(batch)
        if keys.ndim <= 1:
            keys = keys.reshape(-1, 1) if one_array else keys.reshape(1, -1)
        return [row.ravel().tolist() for row in keys.reshape(len(keys), -1)]

    def _learn(self, counts, documents, n_documents: int) -> None:
        for special in (self.mask_token, self.oov_token):
            if special is not None:
                counts.pop(special, None)
        if not counts:
            self._frozen_size = self.vocabulary_size() if self.output_mode != "int" else self._frozen_size
            return
        limit = self.max_tokens - self._token_start() if self.max_tokens else None
        kept = ranked_tokens(counts, limit)
        idf = None
        if self.output_mode == "tf_idf":
            frequency = inverse_document_frequency([documents[t] for t in kept], n_documents, self.dtype)
            idf = np.pad(frequency, (self._token_start(), 0), constant_values=np.mean(frequency, dtype=self.dtype))
            if self.pad_to_max_tokens:
                idf = np.pad(idf, (0, self.max_tokens - len(idf)))
        self._set_tokens(kept, idf)

    # ---- calling ------------------------------------------------------------------------------
    def _keys(self, x) -> np.ndarray:
        if self.invert:
            return integer_array(x, self._owner)
        return string_array(x, self._owner) if self.vocabulary_kind == "string" else integer_array(x, self._owner)

    def lookup(self, keys) -> np.ndarray:
        """Indices (int64) of ``keys`` (tokens: an array, or a flat list), Keras's ``_lookup_dense``: a dictionary
        of the vocabulary, the mask token to 0 (``"int"`` mode; else to an index no encoding counts)."""
        shape = np.shape(keys) if isinstance(keys, np.ndarray) else (len(keys),)
        flat = keys.ravel().tolist() if isinstance(keys, np.ndarray) else keys
        get = self._index.get
        out = np.fromiter((get(k, -1) for k in flat), np.int64, len(flat)).reshape(shape)
        missing = out == -1
        if self.num_oov_indices == 1:
            out[missing] = self._oov_start()
        elif self.num_oov_indices > 1:  # (integers: Keras's floormod buckets, or FarmHash's as strings' are)
            unknown = np.asarray(keys, dtype=object if self.vocabulary_kind == "string" else None)[missing]
            if self.vocabulary_kind == "string" or self.oov_method == "farmhash":
                unknown = np.array(hash_buckets([str(k) for k in unknown.tolist()], self.num_oov_indices), np.int64)
            out[missing] = np.mod(unknown, self.num_oov_indices) + self._oov_start()
        elif missing.any():
            shown = np.unique(np.asarray(keys)[missing])[:10].tolist()
            raise ValueError(f"{self._owner}: with num_oov_indices=0 all inputs should be in the vocabulary, found "
                             f"out-of-vocabulary values {shown}; consider num_oov_indices=1")
        return out

    def call(self, x, mask=None, training: bool = False):
        keys = self._keys(x)
        if self.invert:
            return self._tokens_of(keys)
        if self.output_mode != "int" and self._depth() is None:
            raise RuntimeError(f"{self._owner}: with output_mode={self.output_mode!r} and pad_to_max_tokens=False "
                               "the layer needs its vocabulary before it is called: pass `vocabulary` or call adapt()")
        return self.encode(self.lookup(keys))

    def _tokens_of(self, idx: np.ndarray) -> np.ndarray:
        kind = object if self.vocabulary_kind == "string" else np.int64
        # the tokens after the special ones, then the OOV token (every other index reads it; the special tokens
        # are not listed: num_oov_indices may be huge)
        values = self.get_vocabulary(include_special_tokens=False) + [self.oov_token]
        if kind is object:  # (as bytes, TensorFlow's strings: Keras's predict gives b"cat")
            values = [v.encode("utf-8") for v in values]
        vocabulary = object_array(values, (len(values),)) if kind is object else np.array(values, kind)
        start = self._token_start()
        known = (idx >= start) & (idx < start + len(vocabulary) - 1)
        out = vocabulary[np.where(known, idx - start, len(vocabulary) - 1)]
        if self.mask_token is not None:
            token = self.mask_token.encode("utf-8") if kind is object else self.mask_token
            out = np.where(idx == 0, np.array(token, kind), out)
        return out

    def encode(self, idx: np.ndarray) -> np.ndarray:
        """Indices in the output mode (:func:`fastgru.ops.categorical.encode`; TF-IDF: counts times the weights)."""
        if self.output_mode == "tf_idf" and self._idf is None:
            raise RuntimeError(f"{self._owner}: output_mode 'tf_idf' needs idf weights (adapt(), or `vocabulary` "
                               "with `idf_weights`)")
        return encode(idx, self.output_mode, self._depth(), self._idf)

    def compute_output_shape(self, input_shape: tuple):
        return encoded_shape(input_shape, self.output_mode, self._depth())

    def forward(self, x, mask=None, training: bool = True):
        return self.call(x), None

    def backward(self, dy, cache, need_dx: bool = True):
        return None, []  # (tokens and their indices take no gradient, as in Keras)

    # ---- saving -------------------------------------------------------------------------------
    def load_vocabulary_text(self, text: str) -> None:
        """The vocabulary from the ``vocabulary.txt`` of a Keras archive's assets (one token per line, the special
        tokens first, read as Keras's ``load_assets`` reads it)."""
        lines = text.splitlines()
        while lines and lines[-1] == "":
            lines.pop()
        self.take_vocabulary([int(v) for v in lines] if self.vocabulary_kind != "string" else lines)

    def take_vocabulary(self, values: list) -> None:
        """A saved vocabulary (special tokens first, as ``get_vocabulary`` lists it), for a file or a live model."""
        idf, self._idf = self._idf, None
        declared = self._frozen_size if self.output_mode == "int" else None  # (non-int: checked as the idf's size)
        self._set_tokens(self._checked_tokens(self._as_tokens(values))[0], idf)
        if declared is not None and self.vocabulary_size() != declared:
            raise ValueError(f"{self._owner}: {self.vocabulary_size()} tokens, the config declares {declared}")

    def needs_vocabulary(self) -> bool:
        return self._tokens is None

    @property
    def keras_named_variables(self) -> tuple:
        return ("idf_weights",) if self.output_mode == "tf_idf" else ()

    def named_variable_shape(self, name: str) -> tuple:
        return (self._depth(),)

    def keras_own_variables(self) -> dict:
        """The variables Keras saves by name (``save_own_variables``): a TF-IDF layer's ``idf_weights``."""
        return {"idf_weights": self._idf} if self.output_mode == "tf_idf" and self._idf is not None else {}

    def load_keras_own_variables(self, variables: dict) -> None:
        if self.output_mode == "tf_idf" and "idf_weights" in variables:
            self._idf = np.asarray(variables["idf_weights"], self.dtype)

    def get_config(self) -> dict:
        config = super().get_config()
        vocabulary = self.input_vocabulary
        if vocabulary is None and self._tokens is not None:  # (adapted, or from a file's assets: kept, see above)
            vocabulary = self.get_vocabulary()
        idf = self.input_idf_weights
        if idf is None and self._idf is not None and self._tokens is not None:
            idf = self._idf[: self.vocabulary_size()].tolist()  # (as long as the vocabulary; Keras pads it again)
        config.update(invert=self.invert, max_tokens=self.max_tokens, num_oov_indices=self.num_oov_indices,
                      oov_token=self.oov_token, mask_token=self.mask_token, output_mode=self.output_mode,
                      sparse=self.sparse, pad_to_max_tokens=self.pad_to_max_tokens, idf_weights=idf,
                      vocabulary=vocabulary, vocabulary_size=self.vocabulary_size(), oov_method=self.oov_method,
                      salt=self.salt)
        return config


@register_layer
class StringLookup(IndexLookup):
    """Strings -> indices through a vocabulary (``invert=True``: indices -> strings), Keras 3's ``StringLookup``."""

    keras = KerasContract(names=("StringLookup",))
    parameter_constraints = {**lookup_constraints("string"), "encoding": [StrOptions(("utf-8",))]}
    contract_example = {"kwargs": {"vocabulary": ["red", "green", "blue"]}, "inputs": [(4,)],
                        "strings": ["red", "green", "blue", "cyan", "RED"]}

    @property
    def takes_strings(self) -> bool:
        return not self.invert

    def __init__(self, max_tokens=None, num_oov_indices: int = 1, mask_token=None, oov_token="[UNK]",
                 vocabulary=None, idf_weights=None, invert: bool = False, output_mode: str = "int",
                 pad_to_max_tokens: bool = False, sparse: bool = False, encoding: str = "utf-8", **kwargs):
        self.encoding = check_value(f"StringLookup {kwargs.get('name')!r}", "encoding", encoding,
                                    self.parameter_constraints["encoding"])
        super().__init__(max_tokens=max_tokens, num_oov_indices=num_oov_indices, mask_token=mask_token,
                         oov_token=oov_token, vocabulary=vocabulary, idf_weights=idf_weights, invert=invert,
                         output_mode=output_mode, pad_to_max_tokens=pad_to_max_tokens, sparse=sparse, **kwargs)

    def get_config(self) -> dict:
        return {**super().get_config(), "encoding": self.encoding}


@register_layer
class IntegerLookup(IndexLookup):
    """Integers -> indices through a vocabulary (``invert=True``: indices -> integers), Keras 3's
    ``IntegerLookup``; with several OOV indices an unknown integer goes to ``floormod(value, num_oov_indices)``."""

    vocabulary_kind = "int"
    _default_oov = -1
    keras = KerasContract(names=("IntegerLookup",))
    parameter_constraints = {**lookup_constraints("int"), "vocabulary_dtype": [StrOptions(("int64",))]}
    contract_example = {"kwargs": {"vocabulary": [12, 36, 7]}, "inputs": [(4,)], "tokens": 40}

    def __init__(self, max_tokens=None, num_oov_indices: int = 1, mask_token=None, oov_token=-1, vocabulary=None,
                 vocabulary_dtype: str = "int64", idf_weights=None, invert: bool = False, output_mode: str = "int",
                 sparse: bool = False, pad_to_max_tokens: bool = False, oov_method: str = "floormod", salt=None,
                 **kwargs):
        if vocabulary_dtype != "int64":
            raise ValueError(f"IntegerLookup: only vocabulary_dtype='int64' is supported, received "
                             f"{vocabulary_dtype!r}")
        super().__init__(max_tokens=max_tokens, num_oov_indices=num_oov_indices, mask_token=mask_token,
                         oov_token=oov_token, vocabulary=vocabulary, idf_weights=idf_weights, invert=invert,
                         output_mode=output_mode, pad_to_max_tokens=pad_to_max_tokens, sparse=sparse,
                         oov_method=oov_method, salt=salt, **kwargs)

    def get_config(self) -> dict:
        return {**super().get_config(), "vocabulary_dtype": "int64"}
