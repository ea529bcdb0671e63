"""Keras's ``TextVectorization``: strings -> standardized -> split into tokens -> n-grams -> indices through a
vocabulary (a ``StringLookup`` with the mask token ``""`` and the OOV token ``"[UNK]"``), as Keras 3 on TensorFlow
computes them:

* ``standardize``: ``"lower_and_strip_punctuation"`` (default), ``"lower"``, ``"strip_punctuation"``, None, or a
  callable taking and returning a NumPy array of ``str`` (what Keras passes it on its non-TensorFlow backends).
  Lower-casing is TensorFlow's ``tf.strings.lower``: ASCII letters only (``"É"`` stays); the punctuation stripped
  is the ASCII set of Keras's regular expression.
* ``split``: ``"whitespace"`` (ASCII whitespace, empty tokens dropped), ``"character"`` (Unicode code points),
  None (each string is one token), or a callable taking a 1-D array of ``str`` and returning one token list each.
* ``ngrams``: None, n (1..n-grams) or a tuple of widths; the grams of each width in order, width by width, joined
  by a space, as ``tf.strings.ngrams``.
* ``output_mode``: ``"int"`` (a row of indices per string, padded with 0 to the longest in the batch or cut and
  padded to ``output_sequence_length``), ``"multi_hot"``, ``"count"``, ``"tf_idf"``, and ``"one_hot"`` without a
  split (with one, Keras's output is ragged, which fastgru does not compute).
"""

from __future__ import annotations

import re

import numpy as np

from ..errors import UnsupportedKerasFeature
from ..ops.categorical import batches_of, object_array, string_array
from .base import Layer
from .lookup import StringLookup
from .lookup_options import OUTPUT_MODES, TokenList
from .registry import NONE, Anything, Boolean, Integer, KerasContract, StrOptions, register_layer, validate_params

#: the widest n-grams ``ngrams=n`` asks for (1..n: a config's n must not make a list of any length)
MAX_NGRAM = 1 << 10
_PUNCTUATION = re.compile(r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']')  # (Keras's DEFAULT_STRIP_REGEX)
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_STANDARDIZE = ("lower_and_strip_punctuation", "lower", "strip_punctuation")


def _callable_or(options):
    class _Option(StrOptions):
        def accepts(self, value) -> bool:  # (a dict: a file's serialized function, refused by name in __init__)
            return callable(value) or isinstance(value, dict) or super().accepts(value)

        def __str__(self) -> str:
            return super().__str__() + " or a callable"

    return _Option(options)


@register_layer
class TextVectorization(Layer):
    """Strings (B,) or (B, 1) -> token indices (B, L), or per-string multi-hot / count / TF-IDF rows (B, depth),
    Keras 3's ``TextVectorization`` (see the module docstring)."""

    keras = KerasContract(names=("TextVectorization",))
    parameter_constraints = {
        "max_tokens": [NONE, Integer()], "standardize": [NONE, _callable_or(_STANDARDIZE)],
        "split": [NONE, _callable_or(("whitespace", "character"))], "ngrams": [NONE, Anything()],
        "output_mode": [StrOptions(OUTPUT_MODES)], "output_sequence_length": [NONE, Integer(0)],
        "pad_to_max_tokens": [Boolean()], "vocabulary": [NONE, TokenList()], "idf_weights": [NONE, TokenList()],
        "sparse": [Boolean()], "ragged": [Boolean()], "encoding": [StrOptions(("utf-8",))],
        "vocabulary_size": [NONE, Integer(0)], "has_input_vocabulary": [NONE, Boolean()]}
    contract_example = {"kwargs": {"vocabulary": ["the", "cat", "sat"], "output_sequence_length": 4},
                        "inputs": [(1,)], "strings": ["The cat sat.", "the dog", "", "Cat, cat!"]}
    input_feature_axes = 0
    takes_strings = True
    token_dtypes = True  # (a tf_keras config's dtype names the tokens': io.keras_config)

    def __init__(self, max_tokens=None, standardize="lower_and_strip_punctuation", split="whitespace", ngrams=None,
                 output_mode: str = "int", output_sequence_length=None, pad_to_max_tokens: bool = False,
                 vocabulary=None, idf_weights=None, sparse: bool = False, ragged: bool = False,
                 encoding: str = "utf-8", vocabulary_size=None, has_input_vocabulary=None, **kwargs):
        super().__init__(**kwargs)
        owner = self._owner = f"TextVectorization {self.name!r}"
        output_mode = {"binary": "multi_hot", "tf-idf": "tf_idf"}.get(output_mode, output_mode) \
            if isinstance(output_mode, str) else output_mode
        for name, value in (("standardize", standardize), ("split", split)):
            if isinstance(value, dict):  # (a serialized custom function, in a file's config)
                raise UnsupportedKerasFeature(f"{owner}: a custom {name} function ({value.get('class_name', value)})"
                                              " is not supported from a model file (nothing in a file runs)")
        options = validate_params(owner, self.parameter_constraints, dict(
            max_tokens=max_tokens, standardize=standardize, split=split, output_mode=output_mode,
            output_sequence_length=output_sequence_length, pad_to_max_tokens=pad_to_max_tokens, sparse=sparse,
            ragged=ragged, encoding=encoding))
        self.standardize, self.split = options["standardize"], options["split"]
        self.output_mode, self.output_sequence_length = options["output_mode"], options["output_sequence_length"]
        self.ragged, self.encoding = options["ragged"], options["encoding"]
        self.ngrams = _ngrams(ngrams, owner)
        self._ngrams_arg = list(ngrams) if isinstance(ngrams, (list, tuple)) else ngrams
        if self.output_mode != "int" and self.output_sequence_length is not None:
            raise ValueError(f"{owner}: `output_sequence_length` must not be set if `output_mode` is not 'int', "
                             f"received output_sequence_length={self.output_sequence_length}")
        if self.ragged:
            if self.output_mode != "int":
                raise ValueError(f"{owner}: `ragged` must not be True if `output_mode` is not 'int'")
            raise UnsupportedKerasFeature(f"{owner}: ragged=True (a tf.RaggedTensor output) is not supported: "
                                          "fastgru pads the rows with 0 (ragged=False)")
        if self.output_mode == "one_hot" and self.split is not None:
            raise UnsupportedKerasFeature(f"{owner}: output_mode 'one_hot' with a split gives a ragged output in "
                                          "Keras, which fastgru does not compute: use split=None, or 'multi_hot'")
        self._lookup = StringLookup(
            max_tokens=options["max_tokens"], vocabulary=vocabulary, idf_weights=idf_weights, mask_token="",
            output_mode=self.output_mode, pad_to_max_tokens=options["pad_to_max_tokens"], sparse=options["sparse"],
            has_input_vocabulary=has_input_vocabulary, vocabulary_size=vocabulary_size, dtype=self.dtype,
            name=f"{self.name}_lookup")

    # ---- the lookup's vocabulary ---------------------------------------------------------------
    def get_vocabulary(self, include_special_tokens: bool = True) -> list:
        return self._lookup.get_vocabulary(include_special_tokens)

    def vocabulary_size(self) -> int | None:
        return self._lookup.vocabulary_size()

    def set_vocabulary(self, vocabulary, idf_weights=None) -> None:
        self._lookup.set_vocabulary(vocabulary, idf_weights)

    def adapt(self, data, batch_size=None, steps=None) -> None:
        """Learn the vocabulary from ``data`` (strings: an array, a list or an iterable of batches), each string a
        document, its tokens as the layer makes them, counted as ``StringLookup.adapt`` counts them."""
        batches, one_array = batches_of(data, steps, self._owner)
        self._lookup.learn_from_rows(row for batch in batches for row in self._adapt_rows(batch, one_array))

    def _adapt_rows(self, batch, one_array: bool):
        strings = string_array(batch, self._owner)
        if one_array and strings.ndim == 1:
            strings = strings[:, None]  # (Keras: an array's strings are one per row)
        tokens = self._tokens(strings)
        if self.split is None:
            return [row.ravel().tolist() for row in tokens.reshape(len(tokens), -1)] if tokens.ndim > 1 \
                else [tokens.tolist()]
        return tokens

    # ---- calling ------------------------------------------------------------------------------
    def _standardized(self, strings: np.ndarray) -> np.ndarray:
        if callable(self.standardize):
            return string_array(self.standardize(strings), f"{self._owner} standardize's result")
        if self.standardize is None:
            return strings
        flat = strings.ravel().tolist()
        if self.standardize in ("lower", "lower_and_strip_punctuation"):
            flat = [s.translate(_ASCII_LOWER) for s in flat]
        if self.standardize in ("strip_punctuation", "lower_and_strip_punctuation"):
            flat = [_PUNCTUATION.sub("", s) for s in flat]
        return object_array(flat, strings.shape)

    def _tokens(self, strings: np.ndarray):
        """Tokens: an array of strings the shape of the input when ``split`` is None, else one list per string
        (the input (B,) or (B, 1))."""
        strings = self._standardized(strings)
        if self.split is None:
            if self.ngrams is not None:
                raise UnsupportedKerasFeature(f"{self._owner}: ngrams without a split are not supported")
            return strings
        if strings.ndim > 1:
            if strings.shape[-1] != 1:
                raise ValueError(f"{self._owner}: to split strings into tokens the input rank must be 1 or the last "
                                 f"axis must be 1, received shape {strings.shape}")
            strings = strings[..., 0]
        flat = strings.reshape(-1)
        if callable(self.split):
            rows = [list(map(str, row)) for row in self.split(flat)]
        elif self.split == "whitespace":  # (bytes split at ASCII whitespace only, as TensorFlow's)
            rows = [[t.decode("utf-8") for t in s.encode("utf-8").split()] for s in flat.tolist()]
        else:
            rows = [list(s) for s in flat.tolist()]
        if self.ngrams is not None:
            rows = [[" ".join(row[i:i + n]) for n in self.ngrams for i in range(len(row) - n + 1)] for row in rows]
        return rows

    def call(self, x, mask=None, training: bool = False):
        strings = string_array(x, self._owner)
        tokens = self._tokens(strings)
        lookup = self._lookup
        if self.output_mode != "int" and lookup._depth() is None:
            raise RuntimeError(f"{self._owner}: with output_mode={self.output_mode!r} and pad_to_max_tokens=False "
                               "the layer needs its vocabulary before it is called: pass `vocabulary` or call adapt()")
        if self.split is None:
            idx = lookup.encode(lookup.lookup(tokens))
            return idx if self.output_mode != "int" else self._fitted(idx)
        lengths = np.array([len(row) for row in tokens], np.int64)
        flat = [t for row in tokens for t in row]
        width = int(lengths.max(initial=0))
        padded = np.full((len(tokens), width), -1 if self.output_mode != "int" else 0, np.int64)
        padded[np.arange(width) < lengths[:, None]] = lookup.lookup(flat)
        if self.output_mode != "int":
            return lookup.encode(padded)
        return self._fitted(padded)

    def _fitted(self, idx: np.ndarray) -> np.ndarray:
        """``output_sequence_length``: the last axis cut to it, or padded with 0 up to it."""
        length = self.output_sequence_length
        if length is None:
            return idx
        idx = idx[..., :length]
        return np.pad(idx, [(0, 0)] * (idx.ndim - 1) + [(0, length - idx.shape[-1])])

    def compute_output_shape(self, input_shape: tuple):
        shape = tuple(input_shape)
        if self.output_mode == "int":
            return (shape[0] if shape else None, self.output_sequence_length)
        shape = (shape + (1,) if len(shape) <= 1 else shape) if self.split is None else shape + (None,)
        return self._lookup.compute_output_shape(shape)

    def forward(self, x, mask=None, training: bool = True):
        return self.call(x), None

    def backward(self, dy, cache, need_dx: bool = True):
        return None, []  # (strings take no gradient)

    # ---- saving -------------------------------------------------------------------------------
    def needs_vocabulary(self) -> bool:
        return self._lookup.needs_vocabulary()

    def load_vocabulary_text(self, text: str) -> None:
        self._lookup.load_vocabulary_text(text)

    def take_vocabulary(self, values: list) -> None:
        self._lookup.take_vocabulary(values)

    @property
    def keras_named_variables(self) -> tuple:
        return self._lookup.keras_named_variables

    def named_variable_shape(self, name: str) -> tuple:
        return self._lookup.named_variable_shape(name)

    def keras_own_variables(self) -> dict:
        return self._lookup.keras_own_variables()

    def load_keras_own_variables(self, variables: dict) -> None:
        self._lookup.load_keras_own_variables(variables)

    def get_config(self) -> dict:
        inner = self._lookup.get_config()
        config = super().get_config()
        config.update(max_tokens=inner["max_tokens"], standardize=self.standardize, split=self.split,
                      ngrams=self._ngrams_arg, output_mode=self.output_mode,
                      output_sequence_length=self.output_sequence_length, pad_to_max_tokens=inner["pad_to_max_tokens"],
                      sparse=inner["sparse"], ragged=self.ragged, vocabulary=inner["vocabulary"],
                      idf_weights=inner["idf_weights"], encoding=self.encoding,
                      vocabulary_size=inner["vocabulary_size"])
        return config


def _ngrams(ngrams, owner: str):
    """Keras's ``ngrams``: None, n (widths 1..n) or a tuple (a list, from a config) of widths."""
    if ngrams is None:
        return None
    if isinstance(ngrams, (int, np.integer)) and not isinstance(ngrams, bool) and ngrams >= 1:
        if ngrams > MAX_NGRAM:
            raise UnsupportedKerasFeature(f"{owner}: ngrams={ngrams}; fastgru forms n-grams of at most {MAX_NGRAM} "
                                          "tokens")
        return tuple(range(1, int(ngrams) + 1))
    if isinstance(ngrams, (list, tuple)) and ngrams and all(
            isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1 for n in ngrams):
        if max(ngrams) > MAX_NGRAM:
            raise UnsupportedKerasFeature(f"{owner}: ngrams={list(ngrams)[:8]}; fastgru forms n-grams of at most "
                                          f"{MAX_NGRAM} tokens")
        return tuple(int(n) for n in ngrams)
    raise ValueError(f"{owner}: `ngrams` must be None, a positive integer or a tuple of them, received {ngrams!r}")
