"""Keras's model-file functions under Keras's names (``keras.saving`` and ``keras.models``: ``load_model``,
``save_model``, ``model_from_json``), from :mod:`fastgru.io`."""

from __future__ import annotations

from .io import load_model, load_weights, model_from_json, save_weights
from .io import save_model as _save_model
from .layers import registry

__all__ = ["CustomObjectScope", "custom_object_scope", "get_custom_objects", "get_registered_name",
           "get_registered_object", "load_model", "load_weights", "model_from_json", "register_keras_serializable",
           "save_model", "save_weights"]


def register_keras_serializable(package: str = "Custom", name: str | None = None):
    """Keras's decorator: the class (or function) registered as ``"package>name"`` (``name``: its own by default),
    so that ``load_model`` builds a file's layers of that name without ``custom_objects``, and saving writes that
    registered name, as Keras does."""

    def decorator(obj):
        if isinstance(obj, type) and not hasattr(obj, "get_config"):
            raise ValueError("Cannot register a class that does not have a get_config() method.")
        registered_name = f"{package}>{name or obj.__name__}"
        registry.CUSTOM_OBJECTS[registered_name] = obj
        obj._fg_registered_name = registered_name
        return obj

    return decorator


def get_custom_objects() -> dict:
    """Keras's global dict of custom objects (what is registered; a script may add classes itself)."""
    return registry.CUSTOM_OBJECTS


def get_registered_name(obj) -> str:
    """The name ``obj`` is registered under (``"package>Name"``), else its own name."""
    return (obj.__dict__.get("_fg_registered_name") if isinstance(obj, type) else
            getattr(obj, "_fg_registered_name", None)) or obj.__name__


def get_registered_object(name: str, custom_objects: dict | None = None, module_objects: dict | None = None):
    """The object registered (or given in ``custom_objects``/``module_objects``) under ``name``, or None."""
    for found in (custom_objects, registry.CUSTOM_OBJECTS, module_objects):
        if found and name in found:
            return found[name]
    return None


class CustomObjectScope:
    """Keras's ``custom_object_scope({...})``: within the ``with`` block, the given classes build a file's layers of
    their names."""

    def __init__(self, *custom_objects: dict):
        self.custom_objects = {k: v for objects in custom_objects for k, v in (objects or {}).items()}
        self._scope = None

    def __enter__(self):
        self._scope = registry.custom_layers(self.custom_objects)
        self._scope.__enter__()
        return self

    def __exit__(self, *exc):
        return self._scope.__exit__(*exc)


custom_object_scope = CustomObjectScope


def save_model(model, filepath, overwrite: bool = True, **kwargs) -> None:
    """``model.save(filepath)``, as ``keras.saving.save_model`` (``overwrite=False`` refuses an existing file)."""
    import os

    unknown = sorted(set(kwargs) - {"zipped", "include_optimizer", "save_format"})
    if unknown:
        raise TypeError(f"save_model got unexpected keyword arguments {unknown}")
    if not overwrite and os.path.exists(filepath):
        raise FileExistsError(f"{filepath} exists and overwrite=False")
    _save_model(model, filepath)
