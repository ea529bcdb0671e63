"""Keras's model-file functions under Keras's names (``keras.saving`` and ``keras.models``: ``load_model``,
``save_model``, ``model_from_json``), from :mod:`fastgru.io`."""

from __future__ import annotations

from .io import load_model, load_weights, model_from_json, save_weights
from .io import save_model as _save_model

__all__ = ["load_model", "load_weights", "model_from_json", "save_model", "save_weights"]


def save_model(model, filepath, overwrite: bool = True, **kwargs) -> None:
    """``model.save(filepath)``, as ``keras.saving.save_model`` (``overwrite=False`` refuses an existing file)."""
    import os

    unknown = sorted(set(kwargs) - {"zipped", "include_optimizer", "save_format"})
    if unknown:
        raise TypeError(f"save_model got unexpected keyword arguments {unknown}")
    if not overwrite and os.path.exists(filepath):
        raise FileExistsError(f"{filepath} exists and overwrite=False")
    _save_model(model, filepath)
