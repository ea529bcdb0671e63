"""Checks of single values in Keras layer configs: shapes, option types, dtypes, activations and
initializers. A malformed value is the file's fault (ModelFileError naming the file); a well-formed
value fastgru does not support is an UnsupportedKerasFeature naming the layer and the option."""

from __future__ import annotations

import numbers
import warnings

import numpy as np

from .. import activations, constraints, initializers, regularizers
from ..errors import ModelFileError, UnsupportedKerasFeature
from ..layers import registry


# ---------------------------------------------------------------------------------------------
# small validators (a malformed config is the file's fault: ModelFileError naming the file)
# ---------------------------------------------------------------------------------------------
def _short(value) -> str:
    try:
        text = repr(value)
    except RecursionError:  # (a value nested deeper than repr goes)
        return "<a deeply nested value>"
    return text if len(text) <= 60 else text[:57] + "..."


def _shape(value, path, where: str) -> tuple | None:
    """A batch shape: a list of positive ints or None (the batch and free axes)."""
    if value is None:
        return None
    if isinstance(value, dict) and "input_shape" in value:  # build_config
        value = value["input_shape"]
    ok = isinstance(value, (list, tuple)) and len(value) >= 1 and all(
        d is None or (isinstance(d, int) and not isinstance(d, bool) and d > 0) for d in value)
    if not ok:
        raise ModelFileError(path, f"{where}: expected a shape (a list of positive integers or null), "
                                   f"found {_short(value)}")
    return tuple(value)


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


#: Keras's half-precision dtype policies (mixed precision: float32 variables; or half-precision variables)
#: -> the dtype Keras computes in; fastgru runs such layers in float32
_HALF_PRECISION = {"mixed_float16": "float16", "mixed_bfloat16": "bfloat16", "float16": "float16",
                   "bfloat16": "bfloat16"}


def _dtype(value, label: str, path) -> str:
    """'float32' or 'float64' from a Keras 2 string or a Keras 3 DTypePolicy config (a half-precision
    policy: float32, with a warning)."""
    if isinstance(value, dict):
        inner = value.get("config")
        if not isinstance(inner, dict):
            raise ModelFileError(path, f"layer {label}: dtype policy config is not an object: {_short(value)}")
        if "Quantized" in str(value.get("class_name")) or "mode" in inner:  # (Keras 3.15: mode + source_name)
            name = inner.get("name") or f"{inner.get('mode')}_from_{inner.get('source_name', 'float32')}"
            raise UnsupportedKerasFeature(f"layer {label}: option dtype={name!r} is not supported (a quantized "
                                          "layer; fastgru computes in float32 or float64)")
        value = inner.get("name", "float32")
    value = value or "float32"
    if not isinstance(value, str):
        raise ModelFileError(path, f"layer {label}: dtype should be a name such as 'float32', found {_short(value)}")
    if value in _HALF_PRECISION:
        warnings.warn(f"dtype policy {value!r}: fastgru computes these layers in float32, from the stored weights "
                      f"(Keras computes them in {_HALF_PRECISION[value]}: expect differences of about 1e-3 relative, "
                      "Keras's rounding, in predictions; training, which Keras rounds at every step, can drift much "
                      "further, above all with float16 weights)", stacklevel=4)
        return "float32"
    if value not in ("float32", "float64"):
        raise UnsupportedKerasFeature(
            f"layer {label}: option dtype={value!r} is not supported (fastgru computes in float32 or float64)")
    return value


def _activation(value, label: str, option: str, major: int, path) -> str:
    """Fastgru's activation name for a Keras activation entry; Keras 2's hard_sigmoid keeps its definition."""
    if isinstance(value, dict):
        # Keras serialises built-in activations as plain names; a dict is a custom function or object,
        # except for a 'function' entry from Keras's own activations module
        inner, module = value.get("config"), str(value.get("module") or "")
        if value.get("class_name") == "function" and isinstance(inner, str) and module.startswith("keras"):
            value = inner
        else:
            what = inner if value.get("class_name") == "function" and isinstance(inner, str) \
                else value.get("class_name")
            raise UnsupportedKerasFeature(
                f"layer {label}: {option}: custom activation {what!r} is not supported; supported activations: "
                f"{', '.join(activations.SUPPORTED)}")
    elif value is not None and not isinstance(value, str):
        raise ModelFileError(path, f"layer {label}: option {option!r} should be an activation name, "
                                   f"found {_short(value)}")
    try:
        name = activations.canonical_name(value)
    except UnsupportedKerasFeature as exc:
        raise UnsupportedKerasFeature(f"layer {label}: {option}: {exc}") from None
    if name == "hard_sigmoid" and major < 3:
        return "hard_sigmoid_keras2"  # Keras 2 defined it as clip(0.2x + 0.5, 0, 1)
    return name


def _initializer_usable(value) -> bool:
    """True when fastgru can build ``value`` (tried on a tiny shape, so a bad option shows now)."""
    try:
        init = initializers.get(value)
        shape = initializers.constant_shape(value) or (3, 6)  # (a Constant of a whole matrix: its own shape)
        init(shape, np.dtype(np.float32), np.random.default_rng(0))
        return True
    except Exception:  # noqa: BLE001  (a probe: any failure means "not usable")
        return False


def _trainable(config: dict, label: str, path) -> bool:
    """A layer config's ``trainable`` (default true), which must be a boolean."""
    trainable = config.get("trainable", True)
    if not isinstance(trainable, (bool, np.bool_)):
        raise ModelFileError(path, f"layer {label}: option 'trainable' should be true or false, "
                                   f"found {_short(trainable)}")
    return bool(trainable)


def _regularizer_option(cls, key, value, label, kwargs, ignored, path) -> bool:
    """True when ``key`` is a regularizer option of ``cls`` (``activity_regularizer``, or one of its
    ``regularizer_options``) or a weight constraint (``registry.constraint_options``): an L1/L2/L1L2 or
    MaxNorm/NonNeg/UnitNorm/MinMaxNorm config becomes the constructor's argument (applied in training,
    fastgru.regularizers, fastgru.constraints); one fastgru does not have (OrthogonalRegularizer, custom) is dropped
    with a warning (the model still loads for inference); a malformed one is the file's fault."""
    constraint = key in registry.constraint_options(cls)
    if key != "activity_regularizer" and key not in getattr(cls, "regularizer_options", {}) and not constraint:
        return False
    if value is None:
        return True
    try:
        kwargs[key] = (constraints if constraint else regularizers).get(value)
    except UnsupportedKerasFeature as exc:
        ignored.append(f"{key} ({exc})")
    except (TypeError, ValueError) as exc:
        raise ModelFileError(path, f"layer {label}: option {key!r}: {exc}") from None
    return True


_COMMON = {"name", "trainable", "dtype", "batch_input_shape", "batch_shape", "input_shape", "batch_size",
           "input_dim", "input_length"}
#: options that only shape training (fastgru ignores them at load, with a warning when set)
_TRAINING_ONLY = {"kernel_regularizer", "recurrent_regularizer", "bias_regularizer", "activity_regularizer",
                  "embeddings_regularizer", "kernel_constraint", "recurrent_constraint", "bias_constraint",
                  "embeddings_constraint"}


def build_registered(cls, spec, name: str, label: str, major: int, path):
    """A registered layer (``fastgru.layers.registry``) from its Keras config: every option is checked
    against the class's ``parameter_constraints`` (a malformed value is the file's fault), fixed and
    training-only options as its ``KerasContract`` declares, anything else refused by name."""
    contract, constraints = cls.keras, cls.parameter_constraints
    dtype = spec.config.get("dtype")
    policy = dtype.get("config") if isinstance(dtype, dict) else None
    policy = policy.get("name") if isinstance(policy, dict) else dtype
    if getattr(cls, "token_dtypes", False) and policy in ("string", "int32", "int64"):
        dtype = None  # (tf_keras's text and lookup layers name their tokens' dtype: the outputs' float is float32)
    kwargs = {"name": name, "trainable": _trainable(spec.config, label, path), "dtype": _dtype(dtype, label, path)}
    ignored = []
    for key, value in spec.config.items():
        if key in constraints:
            kinds = constraints[key]
            if any(isinstance(c, registry.ActivationName) for c in kinds):
                value = _activation(value, label, key, major, path)
            elif any(isinstance(c, registry.InitializerSpec) for c in kinds) and not _initializer_usable(value):
                ignored.append(f"{key} {_short(value)} (unknown to fastgru; its default is used)")
                continue
            try:
                kwargs[key] = registry.check_value(f"layer {label}", key, value, kinds, found="found")
            except (TypeError, ValueError) as exc:
                raise ModelFileError(path, str(exc)) from None
        elif key in _COMMON:
            continue
        elif _regularizer_option(cls, key, value, label, kwargs, ignored, path):
            pass
        elif key in contract.ignored or key in _TRAINING_ONLY:
            if value is not None:
                ignored.append(key)
        elif key in contract.fixed:
            required = contract.fixed[key]
            if required is not registry.ANY and value not in (required, None):
                raise UnsupportedKerasFeature(f"layer {label}: option {key}={_short(value)} is not supported")
        else:
            raise UnsupportedKerasFeature(f"layer {label}: option {key!r} (= {_short(value)}) is not supported")
    if major < 3:
        for key, value in contract.keras2_defaults.items():
            if key not in spec.config:
                kwargs[key] = value
    if ignored:
        warnings.warn(f"layer {label}: {', '.join(ignored)}: only affect training, not applied by fastgru",
                      stacklevel=3)
    try:
        layer = cls(**kwargs)
    except UnsupportedKerasFeature as exc:
        raise UnsupportedKerasFeature(f"layer {label}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise ModelFileError(path, f"layer {label}: {exc}") from None
    if spec.config.get("lora_rank") and hasattr(layer, "take_lora"):  # (a layer Keras fine-tuned with LoRA)
        layer.take_lora(spec.config["lora_rank"], spec.config.get("lora_alpha"), path)
    return layer
