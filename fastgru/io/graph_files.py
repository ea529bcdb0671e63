"""A Functional graph from a model file: built from its config (``keras_functional.build_functional``), then
its weights read — from a ``.keras`` archive's weights file, or from a legacy HDF5 file's ``model_weights``."""

from __future__ import annotations

import os

from . import keras_assets, keras_v3, legacy_h5
from .h5utils import guard, open_h5
from .keras_functional import build_functional


def load_zip_graph(archive, config, version, path):
    """(A Functional graph, the bytes of its weights file) from an open ``keras_v3.KerasZip``: built, then its
    weights read."""
    model, leaves = build_functional(config, path, version, archive.weights_stored_bytes)
    weights = archive.read_weights(keras_v3.max_weights_file_bytes(model))
    keras_assets.load_assets(archive, [layer for layer, _ in leaves], [s for _, s in leaves], path)
    _assign_v3(leaves, weights, path)
    return model, weights


def _assign_v3(leaves, h5_source, path) -> None:
    with guard(path), open_h5(path, h5_source) as f:
        keras_v3.assign_v3_weights([l for l, _ in leaves], [s for _, s in leaves], f, path)


def load_h5_graph(f, config, version, path):
    """A Functional graph from an open legacy HDF5 model file (``model_weights/<top-level layer>/``)."""
    model, leaves = build_functional(config, path, version, os.path.getsize(path))
    leaves = [(layer, spec) for layer, spec in leaves if layer.weights]  # a group reads its layers' weights in order
    legacy_h5.assign_legacy_weights([l for l, _ in leaves], [s for _, s in leaves],
                                    legacy_h5.model_weights_group(f, path), path)
    return model

