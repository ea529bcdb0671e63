"""Keras optimizer, loss and metric objects handed to ``compile``, read without importing Keras.

``model.compile(keras.optimizers.Adam(1e-3), loss=keras.losses.Huber(delta=2.0))`` works as with
fastgru's own objects: the Keras object is turned into the config dict a ``.keras`` file stores
(``{"class_name": ..., "config": obj.get_config()}``), which ``optimizers.get``, ``losses.get`` and
``metrics.get`` already read. Keras's loss classes keep their function's arguments out of
``get_config`` (Huber's ``delta``, for one); those are read from the wrapper and added, so that
nothing the user set is silently dropped.
"""

from __future__ import annotations

_KERAS_PACKAGES = ("keras", "tf_keras", "tensorflow")


def is_keras_object(obj) -> bool:
    """Whether ``obj`` (an instance or a function) comes from Keras or TensorFlow."""
    module = getattr(obj, "__module__", None) if callable(obj) and not hasattr(obj, "get_config") else None
    module = module or type(obj).__module__ or ""
    return module.split(".")[0] in _KERAS_PACKAGES


def keras_config(obj) -> dict | str | None:
    """The config dict of a Keras object (class name and ``get_config()``, with a loss wrapper's
    function arguments merged in), the name of a plain Keras loss or metric function
    (``keras.losses.mean_squared_error`` -> ``"mean_squared_error"``), or None for anything else."""
    if not is_keras_object(obj):
        return None
    get_config = getattr(obj, "get_config", None)
    if not callable(get_config):
        name = getattr(obj, "__name__", None)
        return name if isinstance(name, str) else None
    config = dict(get_config() or {})
    for key, value in (getattr(obj, "_fn_kwargs", None) or {}).items():
        config.setdefault(key, value)
    return {"class_name": type(obj).__name__, "config": config}


def is_serialized(value, output_names=()) -> bool:
    """Whether ``value`` is one serialized object (Keras's ``{"module", "class_name", "config",
    "registered_name"}``, a ``.keras`` file's form of a loss or metric object) rather than a dict keyed by
    output name: it has ``class_name`` and ``config``, and not every key is one of ``output_names``."""
    return (isinstance(value, dict) and "class_name" in value and "config" in value
            and not set(value) <= set(output_names))


def serialize(obj, module: str) -> dict | str | None:
    """Keras's ``keras.<module>.serialize(obj)``: ``{"module", "class_name", "config", "registered_name"}`` of an
    object with ``get_config`` (a name or None as it is), which the module's ``deserialize`` (its ``get``) reads."""
    if obj is None or isinstance(obj, str):
        return obj
    if not callable(getattr(obj, "get_config", None)):
        raise ValueError(f"{obj!r:.60} cannot be serialized: it has no get_config()")
    own = not type(obj).__module__.startswith(("fastgru.", "keras"))
    config = dict(obj.get_config())
    if module == "losses" and getattr(obj, "delta", 1.0) != 1.0:  # (Huber's get_config omits it, as Keras's)
        config.setdefault("delta", obj.delta)
    return {"module": None if own else f"keras.{module}", "class_name": type(obj).__name__, "config": config,
            "registered_name": (getattr(type(obj), "_fg_registered_name", None) or type(obj).__name__) if own else None}
