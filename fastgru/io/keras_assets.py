"""What Keras's preprocessing layers keep outside their config and their numbered variables: a vocabulary among a
``.keras`` archive's assets (``assets/<layer path>/vocabulary.txt``, written by ``save_assets``) and variables saved
by name (``<layer path>/vars/idf_weights``, written by ``save_own_variables``). fastgru reads both; it writes the
vocabulary into the layer's config instead (``fastgru.layers.lookup``), which every format keeps, and the named
variables where Keras reads them (a ``TextVectorization``'s also under its ``_lookup_layer``)."""

from __future__ import annotations

import h5py
import numpy as np

from ..errors import ModelFileError
from .h5utils import dataset_shape, read_dataset

#: the most bytes a vocabulary file may take (a 1-million-token vocabulary takes about 10 MB)
MAX_VOCABULARY_BYTES = 256 << 20


def _own(vars_path: str) -> str:
    return vars_path[: -len("/vars")] if vars_path.endswith("/vars") else vars_path


def load_assets(archive, layers, specs, path) -> None:
    """Give each layer that has no vocabulary yet the one among the archive's assets (Keras writes a
    ``TextVectorization``'s twice, for it and for its inner lookup: the first is read)."""
    for layer, spec in zip(layers, specs):
        if not getattr(layer, "needs_vocabulary", lambda: False)():
            continue
        own = _own(spec.v3_path)
        names = [f"assets/{own}/vocabulary.txt", f"assets/{own}/_lookup_layer/vocabulary.txt"]
        name = next((n for n in names if n in archive.names), None)
        if name is None:
            raise ModelFileError(path, f"layer {layer.name!r} ({type(layer).__name__}) has no vocabulary: neither its "
                                       f"config nor the archive's {names[0]} holds one")
        raw = archive.read_member(name, MAX_VOCABULARY_BYTES)
        try:
            layer.load_vocabulary_text(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, TypeError) as exc:
            raise ModelFileError(path, f"{name}: not a vocabulary layer {layer.name!r} can take ({exc})") from None


def refuse_missing_vocabulary(layers, path) -> None:
    """A model file without assets (``.h5``) cannot hold an adapted vocabulary that its config leaves out: every token
    would map to the OOV index (Keras's own load of such a file fails at its first call, "Table not initialized").
    Refused, naming the layer."""
    for layer in layers:
        if getattr(layer, "needs_vocabulary", lambda: False)():
            raise ModelFileError(path, f"layer {layer.name!r} ({type(layer).__name__}) has no vocabulary in this file "
                                       "(Keras's .h5 format does not save an adapted vocabulary, and Keras cannot run "
                                       "the model it loads from it either): save the model as .keras")


def read_named_vars(layer, root: h5py.Group, vars_path: str, path) -> dict:
    """A layer's variables saved by name (a TF-IDF layer's ``idf_weights``), checked against the column count the
    config declares; ``layer.load_keras_own_variables`` takes them."""
    names = [n for n in getattr(layer, "keras_named_variables", ()) if vars_path in root and n in root[vars_path]]
    values = {}
    for name in names:
        group = root[vars_path]
        shape = dataset_shape(group, name, path)
        expected = layer.named_variable_shape(name)
        if shape != expected:
            raise ModelFileError(path, f"{vars_path}/{name} has shape {shape}, layer {layer.name!r} expects {expected}")
        values[name] = read_dataset(group, name, path, expected)
        if not np.isfinite(values[name]).all():
            raise ModelFileError(path, f"{vars_path}/{name} holds NaN or infinite values")
    return values


def write_named_vars(f: h5py.Group, layer, own: str) -> None:
    """The named variables where Keras's ``load_own_variables`` reads them."""
    variables = layer.keras_own_variables() if hasattr(layer, "keras_own_variables") else {}
    groups = [f"{own}/vars"] + ([f"{own}/_lookup_layer/vars"] if type(layer).__name__ == "TextVectorization" else [])
    for group_path in groups:
        group = f.require_group(group_path)
        for name, value in variables.items():
            group.create_dataset(name, data=value)
