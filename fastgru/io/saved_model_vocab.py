"""The vocabularies a Keras 2 SavedModel keeps out of its ``model_config``: tf_keras writes a lookup layer's
(``StringLookup``, ``IntegerLookup``, ``TextVectorization``) constructor vocabulary as ``null`` there, and the layer's
own config — in the root node's ``config``, the model's ``get_config()`` at save time — holds it. A vocabulary the
layer learned with ``adapt`` is in TensorFlow's lookup tables only (``saved_model.load_into`` refuses that)."""

from __future__ import annotations

_LOOKUPS = ("StringLookup", "IntegerLookup", "TextVectorization")
_KEYS = ("vocabulary", "idf_weights")
_MAX_DEPTH = 64


def _lookups(config, found: dict, depth: int = 0) -> dict:
    """``{layer name: {vocabulary, idf_weights}}`` of every lookup layer entry in ``config`` (nested models too)."""
    if depth > _MAX_DEPTH:
        return found
    if isinstance(config, dict):
        inner = config.get("config")
        if config.get("class_name") in _LOOKUPS and isinstance(inner, dict) and isinstance(inner.get("name"), str):
            values = {k: inner[k] for k in _KEYS if isinstance(inner.get(k), list)}
            if values:
                found.setdefault(inner["name"], values)
        for value in config.values():
            _lookups(value, found, depth + 1)
    elif isinstance(config, list):
        for value in config:
            _lookups(value, found, depth + 1)
    return found


def fill_vocabularies(model_config: dict, root_config) -> dict:
    """``model_config`` with each lookup layer's missing vocabulary (and idf weights) taken, by the layer's name,
    from the root node's ``config`` (the entries are updated in place)."""
    given = _lookups(root_config, {})
    if given:
        _fill(model_config, given, 0)
    return model_config


def _fill(config, given: dict, depth: int) -> None:
    if depth > _MAX_DEPTH:
        return
    if isinstance(config, dict):
        inner = config.get("config")
        if config.get("class_name") in _LOOKUPS and isinstance(inner, dict) and inner.get("name") in given:
            for key, value in given[inner["name"]].items():
                if inner.get(key) is None:
                    inner[key] = value
        for value in config.values():
            _fill(value, given, depth + 1)
    elif isinstance(config, list):
        for value in config:
            _fill(value, given, depth + 1)
