"""Losses with analytic gradients, matching Keras 3 (TensorFlow backend) value for value.

Every loss reduces one value per sample position (the last axis is reduced: averaged for the
regression losses and BCE, summed over classes for the categorical ones) and then applies Keras's
default reduction ``"sum_over_batch_size"``: the sum of those values divided by their count. For a
``(B, T, C)`` output that is the mean over batch *and* time.

Probabilities are clipped to ``[1e-7, 1 - 1e-7]`` as Keras does, with a zero gradient outside that
range. :meth:`Loss.value_and_grad_from_logits` computes the crossentropies from pre-activations:
Keras 3 silently does this whenever the model output comes from a ``sigmoid`` or ``softmax``
activation (see :func:`uses_logits`).
"""

from __future__ import annotations

import numbers

import numpy as np

from ..eager import eager
from ..errors import UnsupportedKerasFeature
from ..layers import registry
from . import keras_objects
from .ctc_loss import CTC
from .focal_losses import BinaryFocalCrossentropy, CategoricalFocalCrossentropy
from .function_loss import LossFunctionWrapper
from .keras_objects import keras_config
from .loss_base import Loss, _clip_and_mask, _same_rank, _sigmoid_xent
from .loss_node import symbolic_loss
from .more_losses import (
    CategoricalHinge,
    CosineSimilarity,
    Hinge,
    KLDivergence,
    LogCosh,
    MeanAbsolutePercentageError,
    MeanSquaredLogarithmicError,
    Poisson,
    SquaredHinge,
)
from .overlap_losses import CategoricalGeneralizedCrossEntropy, Dice, Tversky


class BinaryCrossentropy(Loss):
    """``mean_last_axis(-(t log p + (1 - t) log(1 - p)))``; labels smoothed toward 0.5."""

    logits_activation = "sigmoid"
    supports_logits = True
    same_shape = True

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 reduction: str = "sum_over_batch_size", name: str = "binary_crossentropy"):
        super().__init__(name, reduction)
        if axis != -1:
            raise ValueError(f"only axis=-1 is supported; received axis={axis}")
        self.from_logits = bool(from_logits)
        self.label_smoothing = float(label_smoothing)
        self.axis = axis

    def get_config(self) -> dict:
        return {**super().get_config(), "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing, "axis": self.axis}

    def _values(self, t, x, logits):
        dt = x.dtype.type
        if self.label_smoothing:
            t = t * dt(1.0 - self.label_smoothing) + dt(0.5 * self.label_smoothing)
        d = dt(x.shape[-1])
        if logits:  # tf.nn.sigmoid_cross_entropy_with_logits, and its autodiff gradient
            elem, delem = _sigmoid_xent(x, t)
        else:
            p, inside = _clip_and_mask(x, x.dtype)
            one_m = dt(1) - p
            elem = -(t * np.log(p) + (dt(1) - t) * np.log(one_m))
            delem = np.where(inside, -(t / p) + (dt(1) - t) / one_m, dt(0))
        return np.sum(elem, axis=-1, dtype=x.dtype) / d, delem / d


class CategoricalCrossentropy(Loss):
    """``-sum_c t_c log p_c`` after renormalising p to sum to 1; labels smoothed by ``ls / C``."""

    logits_activation = "softmax"
    supports_logits = True

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 reduction: str = "sum_over_batch_size", name: str = "categorical_crossentropy"):
        super().__init__(name, reduction)
        if axis != -1:
            raise ValueError(f"only axis=-1 is supported; received axis={axis}")
        self.from_logits = bool(from_logits)
        self.label_smoothing = float(label_smoothing)
        self.axis = axis

    def get_config(self) -> dict:
        return {**super().get_config(), "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing, "axis": self.axis}

    def _align(self, y_true, y_pred):
        y_true, y_pred = super()._align(y_true, y_pred)
        if y_true.shape != y_pred.shape:
            raise ValueError(
                "categorical_crossentropy needs y_true and y_pred of the same shape; "
                f"received y_true.shape={y_true.shape}, y_pred.shape={y_pred.shape}"
            )
        return y_true, y_pred

    def _values(self, t, x, logits):
        dt = x.dtype.type
        if self.label_smoothing:
            t = t * dt(1.0 - self.label_smoothing) + dt(self.label_smoothing) / dt(x.shape[-1])
        if logits:  # tf.nn.softmax_cross_entropy_with_logits; its gradient is softmax - labels
            return _softmax_xent(x, t)
        s = np.sum(x, axis=-1, keepdims=True, dtype=x.dtype)
        p, inside = _clip_and_mask(x / s, x.dtype)
        values = -np.sum(t * np.log(p), axis=-1, dtype=x.dtype)
        gp = np.where(inside, -(t / p), dt(0))  # d/d(x / s)
        gs = np.sum(gp * ((-x / s) / s), axis=-1, keepdims=True, dtype=x.dtype)
        return values, gp / s + gs


def _softmax_xent(z, onehot):
    """TF's fused softmax crossentropy: (loss, softmax - labels)."""
    shifted = z - np.max(z, axis=-1, keepdims=True)
    e = np.exp(shifted)
    sum_e = np.sum(e, axis=-1, keepdims=True, dtype=z.dtype)
    values = np.sum(onehot * (np.log(sum_e) - shifted), axis=-1, dtype=z.dtype)
    return values, e / sum_e - onehot


class SparseCategoricalCrossentropy(Loss):
    """Categorical crossentropy with integer labels of shape ``y_pred.shape[:-1]`` (or ``+ (1,)``).

    ``ignore_class`` (an int, e.g. -1 or 255; may lie outside ``[0, C)``): positions whose label is that
    class get a zero loss and gradient and are dropped from the mean as masked positions are (Keras 3
    ANDs them into the output's mask): ``"sum_over_batch_size"`` averages over the other positions.
    Keras then reads the probabilities, never the logits of a softmax output.
    """

    logits_activation = "softmax"
    supports_logits = True

    def __init__(self, from_logits: bool = False, ignore_class: int | None = None,
                 reduction: str = "sum_over_batch_size", axis: int = -1,
                 name: str = "sparse_categorical_crossentropy"):
        super().__init__(name, reduction)
        if axis != -1:
            raise ValueError(f"only axis=-1 is supported; received axis={axis}")
        if ignore_class is not None and (isinstance(ignore_class, bool)
                                         or not isinstance(ignore_class, numbers.Integral)):
            raise ValueError(f"ignore_class must be an int or None; received {ignore_class!r}")
        self.from_logits = bool(from_logits)
        self.ignore_class = None if ignore_class is None else int(ignore_class)
        self.axis = axis

    def uses_output_logits(self, output_activation: str | None) -> bool:
        # with ignore_class Keras takes ops.where of the prediction, which drops the softmax's logits
        return self.ignore_class is None and super().uses_output_logits(output_activation)

    def _valid_positions(self, labels):
        return None if self.ignore_class is None else labels != self.ignore_class

    def get_config(self) -> dict:
        return {**super().get_config(), "from_logits": self.from_logits, "ignore_class": self.ignore_class}

    def _align(self, y_true, y_pred):
        y_true, y_pred = _same_rank(y_true, y_pred)
        if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
            y_true = y_true[..., 0]
        if y_true.shape != y_pred.shape[:-1]:
            raise ValueError(
                "sparse_categorical_crossentropy needs y_true of shape y_pred.shape[:-1] (or with a "
                f"trailing 1); received y_true.shape={y_true.shape}, y_pred.shape={y_pred.shape}"
            )
        labels = y_true.astype(np.int64)
        n_classes = y_pred.shape[-1]
        kept = labels if self.ignore_class is None else labels[labels != self.ignore_class]
        if kept.size and (kept.min() < 0 or kept.max() >= n_classes):
            raise ValueError(
                f"sparse labels must lie in [0, {n_classes}); received values from "
                f"{kept.min()} to {kept.max()}"
                + ("" if self.ignore_class is None else f" (besides ignore_class={self.ignore_class})")
            )
        return labels, y_pred

    def _values(self, labels, x, logits):
        if self.ignore_class is not None:  # Keras: label 0 and prediction 0 there, then the loss zeroed
            valid = labels != self.ignore_class
            values, dvalues = self._xent(np.where(valid, labels, 0), np.where(valid[..., None], x, 0), logits)
            return np.where(valid, values, 0), np.where(valid[..., None], dvalues, 0)
        return self._xent(labels, x, logits)

    @staticmethod
    def _xent(labels, x, logits):
        onehot = np.zeros(x.shape, dtype=x.dtype)
        np.put_along_axis(onehot, labels[..., None], 1, axis=-1)
        if logits:
            return _softmax_xent(x, onehot)
        # Keras: clip, take the log, then sparse softmax crossentropy of those "logits"
        p, inside = _clip_and_mask(x, x.dtype)
        values, dlog = _softmax_xent(np.log(p), onehot)
        return values, np.where(inside, dlog * (x.dtype.type(1) / p), x.dtype.type(0))


class MeanSquaredError(Loss):
    """``mean_last_axis((y_true - y_pred) ** 2)``."""

    def __init__(self, reduction: str = "sum_over_batch_size", name: str = "mean_squared_error"):
        super().__init__(name, reduction)

    def _values(self, t, x, logits):
        d = x.dtype.type(x.shape[-1])
        diff = t - x
        return np.sum(np.square(diff), axis=-1, dtype=x.dtype) / d, (x.dtype.type(-2) * diff) / d


class MeanAbsoluteError(Loss):
    """``mean_last_axis(|y_true - y_pred|)``; gradient 0 where they are equal."""

    def __init__(self, reduction: str = "sum_over_batch_size", name: str = "mean_absolute_error"):
        super().__init__(name, reduction)

    def _values(self, t, x, logits):
        d = x.dtype.type(x.shape[-1])
        diff = t - x
        return np.sum(np.abs(diff), axis=-1, dtype=x.dtype) / d, -np.sign(diff) / d


class Huber(Loss):
    """``mean_last_axis(0.5 e^2 if |e| <= delta else delta |e| - 0.5 delta^2)``, ``e = y_pred - y_true``."""

    def __init__(self, delta: float = 1.0, reduction: str = "sum_over_batch_size", name: str = "huber_loss"):
        super().__init__(name, reduction)
        self.delta = float(delta)

    def get_config(self) -> dict:  # Keras's Huber.get_config omits delta
        return super().get_config()

    def _values(self, t, x, logits):
        dt = x.dtype.type
        delta, half = dt(self.delta), dt(0.5)
        err = x - t
        a = np.abs(err)
        quad = a <= delta
        elem = np.where(quad, half * np.square(err), delta * a - half * np.square(delta))
        d = dt(x.shape[-1])
        return np.sum(elem, axis=-1, dtype=x.dtype) / d, np.where(quad, err, delta * np.sign(err)) / d


_BY_NAME = {
    "binary_crossentropy": BinaryCrossentropy, "bce": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError,
    "huber": Huber,
    "mean_squared_logarithmic_error": MeanSquaredLogarithmicError, "msle": MeanSquaredLogarithmicError,
    "mean_absolute_percentage_error": MeanAbsolutePercentageError, "mape": MeanAbsolutePercentageError,
    "log_cosh": LogCosh, "logcosh": LogCosh,
    "kl_divergence": KLDivergence, "kld": KLDivergence, "kullback_leibler_divergence": KLDivergence,
    "poisson": Poisson, "cosine_similarity": CosineSimilarity,
    "hinge": Hinge, "squared_hinge": SquaredHinge, "categorical_hinge": CategoricalHinge,
    "binary_focal_crossentropy": BinaryFocalCrossentropy,
    "categorical_focal_crossentropy": CategoricalFocalCrossentropy,
    "ctc": CTC, "dice": Dice, "tversky": Tversky,
    "categorical_generalized_cross_entropy": CategoricalGeneralizedCrossEntropy,
}
_CLASSES = {c.__name__: c for c in (BinaryCrossentropy, CategoricalCrossentropy, SparseCategoricalCrossentropy,
                                    MeanSquaredError, MeanAbsoluteError, Huber, MeanSquaredLogarithmicError,
                                    MeanAbsolutePercentageError, LogCosh, KLDivergence, Poisson, CosineSimilarity,
                                    Hinge, SquaredHinge, CategoricalHinge, BinaryFocalCrossentropy,
                                    CategoricalFocalCrossentropy, CTC, Dice, Tversky,
                                    CategoricalGeneralizedCrossEntropy)}


def _loss_function(name: str, cls: type):
    def function(y_true, y_pred, **options):
        try:
            loss = cls(**options)
        except TypeError:  # (an option the class does not take: named)
            raise TypeError(f"{name}() got an unexpected keyword argument among {sorted(options)} (it takes the "
                            f"options of {cls.__name__})") from None
        if getattr(y_true, "_fg_symbolic", False) or getattr(y_pred, "_fg_symbolic", False):
            loss.name = name
            return symbolic_loss(loss, y_true, y_pred, function=True)  # (a node of a custom loss's trace)
        return eager(loss.per_sample(y_true, y_pred))  # (with Keras's .numpy())

    function.__name__ = function.__qualname__ = name
    function.__doc__ = (f"Keras's ``{name}(y_true, y_pred, **options)``: the unreduced values of "
                        f":class:`{cls.__name__}` (``options``: its arguments, ``from_logits=True`` and the like).")
    return function


#: Keras's loss functions (``keras.losses.mean_squared_error``: one value per sample; as ``compile``'s loss, the
#: loss of that name)
_FUNCTIONS = {name: _loss_function(name, cls) for name, cls in _BY_NAME.items()
              if name.islower() and "_" in name or name in ("huber", "poisson", "hinge")}
globals().update(_FUNCTIONS)


def get(identifier) -> Loss:
    """Return a Loss for a name (``"mse"``, ``"binary_crossentropy"``, ``"Huber"``...), a Keras
    config dict (``{"class_name": "BinaryCrossentropy", "config": {...}}``) or a Loss instance.

    Names of loss *functions* give an instance named by the string, as Keras does (``"mse"`` reports
    as ``"mse"``); class names give the class's default name.
    """
    if isinstance(identifier, Loss):
        cls = type(identifier)
        own_compute = cls._values is not Loss._values or cls._run is not Loss._run  # (CTC, Dice: their own _run)
        if not own_compute and not callable(getattr(identifier, "call", None)):
            raise UnsupportedKerasFeature(f"loss {cls.__name__!r}: a Loss subclass defines call(y_true, y_pred)")
        return identifier  # (a Keras-style subclass computes in its call: training/function_loss.py)
    if getattr(identifier, "__name__", None) in _FUNCTIONS and _FUNCTIONS[identifier.__name__] is identifier:
        return get(identifier.__name__)  # (one of the functions above: the loss of its name)
    converted = keras_config(identifier)  # a Keras object: its config, as a .keras file stores it
    if converted is not None:
        return get(converted)
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if isinstance(identifier, dict):
        cls_name, config = identifier.get("class_name"), identifier.get("config") or {}
        if cls_name == "function":  # a serialised loss function, e.g. {"config": "mse", ...}
            name = config if isinstance(config, str) else identifier.get("registered_name")
            if str(name).lower() in _BY_NAME or str(name) in _CLASSES:
                return get(name)
            own = registry.custom_function(name)  # (the script's own: load_model's custom_objects, or registered)
            if own is None:
                raise ValueError(f"loss {name!r} is a custom Python function, which fastgru cannot run from a file "
                                 "(give it in load_model's custom_objects, as Keras asks)")
            return LossFunctionWrapper(own)
        if cls_name == "LossFunctionWrapper" and isinstance(config, dict):  # (fn: a function's name or entry)
            options = {k: v for k, v in config.items() if k not in ("fn", "dtype")}
            fn = config.get("fn")
            fn = fn.get("config") if isinstance(fn, dict) else fn
            own = registry.custom_function(fn) if isinstance(fn, str) else None
            if own is None:
                raise ValueError(f"loss {fn!r} is a custom Python function, which fastgru cannot run from a file "
                                 "(give it in load_model's custom_objects, as Keras asks)")
            return LossFunctionWrapper(own, **options)
        names = (identifier.get("registered_name"), cls_name)  # (its registered name may differ from its class's)
        own = None if cls_name in _CLASSES else next(
            (c for n in names if n and (c := registry.custom_function(n, Loss))), None)
        if own is not None:  # (a script's own Loss subclass, by its class name)
            return own.from_config(dict(config))
        if cls_name not in _CLASSES:
            raise ValueError(f"unsupported loss class {cls_name!r} (a script's own is given in load_model's "
                             f"custom_objects); supported: {', '.join(sorted(_CLASSES))}")
        return _CLASSES[cls_name].from_config(config)
    if isinstance(identifier, str):
        if identifier in _CLASSES:
            return _CLASSES[identifier]()
        key = identifier.lower()
        if key in _BY_NAME:
            return _BY_NAME[key](name=identifier)
        if key == "huber_loss":
            return Huber()
    if callable(identifier) and not isinstance(identifier, type):  # a script's loss function, as Keras wraps it
        return LossFunctionWrapper(identifier)
    raise ValueError(
        f"could not interpret loss identifier {identifier!r}; supported names: {', '.join(sorted(_BY_NAME))}"
    )


def uses_logits(loss: Loss, output_activation: str | None, y_true=None, y_pred=None) -> bool:
    """True when Keras 3 computes ``loss`` from the pre-activation of the model's output.

    Keras's ``sigmoid`` and ``softmax`` activations tag their output with the logits, and all three
    crossentropies then use those logits (``from_logits`` set or not), even across kinds: a
    categorical crossentropy on a sigmoid output becomes a *softmax* crossentropy of the sigmoid's
    input, and a binary one on a softmax output a sigmoid crossentropy of the softmax's input.
    The tag is lost when Keras reshapes the prediction to the labels' rank (e.g. labels ``(B, T)``
    against a ``(B, T, 1)`` output): pass ``y_true`` and ``y_pred`` (arrays or shapes) to account
    for that; the probabilities are then used, clipped. Each loss decides in
    :meth:`Loss.uses_output_logits`: not ``SparseCategoricalCrossentropy(ignore_class=...)``, whose
    ``where`` drops the tag; ``BinaryFocalCrossentropy`` only on a sigmoid output without ``from_logits``;
    never ``CategoricalFocalCrossentropy``, which Keras computes from the probabilities.
    """
    if not loss.uses_output_logits(output_activation):
        return False
    if y_true is None or y_pred is None:
        return True
    t_shape = tuple(getattr(y_true, "shape", y_true))
    p_shape = tuple(getattr(y_pred, "shape", y_pred))
    # (a size the model leaves open, such as a variable number of steps: the labels' at that axis)
    p_shape = tuple((t_shape[i] if i < len(t_shape) else 1) if d is None else d for i, d in enumerate(p_shape))
    p_probe = np.empty(p_shape, dtype=bool)
    _, aligned = _same_rank(np.empty(t_shape, dtype=bool), p_probe)
    return aligned.shape == p_shape


def serialize(losse) -> dict | str | None:
    """Keras's ``keras.losses.serialize``: the losse's config, as a ``.keras`` file holds it."""
    return keras_objects.serialize(losse, "losses")


def deserialize(config, custom_objects: dict | None = None):
    """Keras's ``keras.losses.deserialize``: the losse of a config (or name); ``custom_objects``: a script's
    own classes and functions, by name."""
    with registry.custom_layers(custom_objects):
        return get(config)
