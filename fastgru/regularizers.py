"""Weight and activity regularizers, Keras 3's ``L1``, ``L2`` and ``L1L2``: a penalty added to the
training loss, ``l1 * sum(|w|) + l2 * sum(w**2)``, and its gradient ``l1 * sign(w) + 2 * l2 * w``.

A layer takes them as Keras's options (``kernel_regularizer=``, ``bias_regularizer=``,
``recurrent_regularizer=``, ``embeddings_regularizer=`` where the layer has that weight, and
``activity_regularizer=`` on every layer): a regularizer object, a name (``"l1"``, ``"l2"``,
``"l1_l2"``: 0.01 each, as Keras; ``"orthogonal_regularizer"``), or a config as Keras serializes it
(``{"class_name": "L2", "config": {"l2": 0.01}}``). ``Layer`` keeps them in
``layer.weight_regularizers`` (weight name -> regularizer) and ``layer.activity_regularizer``;
``fastgru.training.regularization`` adds their penalties to the loss and their gradients to the
weights' gradients, as Keras's trainer does.

Keras's ``OrthogonalRegularizer`` too (rank-2 weights). Custom regularizers are not implemented: :func:`get`
raises ``UnsupportedKerasFeature`` (``fastgru.io`` then loads the model for inference and warns that the
regularizer is not applied).
"""

from __future__ import annotations

import numbers

import numpy as np

from .errors import UnsupportedKerasFeature


class L1L2:
    """``l1 * sum(|x|) + l2 * sum(x**2)`` (Keras's ``L1L2``; defaults 0.0, as Keras's class)."""

    keras_name = "L1L2"

    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        for name, value in (("l1", l1), ("l2", l2)):
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not np.isfinite(value):
                raise TypeError(f"{type(self).__name__}: {name} should be a finite number, received {value!r}")
            if value < 0:
                raise ValueError(f"{type(self).__name__}: {name} should be >= 0, received {value!r}")
        self.l1, self.l2 = float(l1), float(l2)

    def __call__(self, x: np.ndarray) -> float:
        """The penalty of ``x`` (computed in ``x``'s dtype, as Keras)."""
        x = np.asarray(x)
        value = x.dtype.type(0) if x.dtype.kind == "f" else 0.0
        if self.l1:
            value = value + x.dtype.type(self.l1) * np.abs(x).sum()
        if self.l2:
            value = value + x.dtype.type(self.l2) * np.square(x).sum()
        return value

    def gradient(self, x: np.ndarray) -> np.ndarray:
        """D penalty / d x (``sign(0) = 0``, as TensorFlow's gradient of ``abs``)."""
        x = np.asarray(x)
        grad = np.zeros_like(x)
        if self.l1:
            grad += x.dtype.type(self.l1) * np.sign(x)
        if self.l2:
            grad += x.dtype.type(2.0 * self.l2) * x
        return grad

    def get_config(self) -> dict:
        return {"l1": self.l1, "l2": self.l2}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v}' for k, v in self.get_config().items())})"


class L1(L1L2):
    keras_name = "L1"

    def __init__(self, l1: float = 0.01):
        super().__init__(l1=l1)

    def get_config(self) -> dict:
        return {"l1": self.l1}


class L2(L1L2):
    keras_name = "L2"

    def __init__(self, l2: float = 0.01):
        super().__init__(l2=l2)

    def get_config(self) -> dict:
        return {"l2": self.l2}


class OrthogonalRegularizer:
    """Keras's ``OrthogonalRegularizer(factor=0.01, mode="rows")``: the mean absolute cosine between distinct rows
    (``mode="columns"``: columns) of a rank-2 weight, times ``factor / 2``:
    ``factor * 0.5 * sum_{i != j} |n_i . n_j| / (size (size - 1) / 2)``, ``n_i = x_i * min(rsqrt(|x_i|^2), 1e7)``
    (Keras's ``normalize``), computed in ``x``'s dtype; its gradient as TensorFlow's (``abs``: ``sign``, 0 at 0)."""

    keras_name = "OrthogonalRegularizer"

    def __init__(self, factor: float = 0.01, mode: str = "rows"):
        if isinstance(factor, (bool, np.bool_)) or not isinstance(factor, numbers.Real) or not np.isfinite(factor) \
                or factor < 0:
            raise ValueError(f"OrthogonalRegularizer: factor should be a non-negative finite number, received "
                             f"{factor!r}")
        if mode not in ("rows", "columns"):
            raise ValueError(f"OrthogonalRegularizer: mode should be 'rows' or 'columns', received {mode!r}")
        self.factor, self.mode = float(factor), mode

    def _parts(self, x: np.ndarray):
        x = np.asarray(x)
        if x.ndim != 2:
            raise ValueError(f"Inputs to OrthogonalRegularizer must have rank 2. Received: inputs.shape={x.shape}")
        rows = x if self.mode == "rows" else x.T
        dtype = rows.dtype.type
        with np.errstate(divide="ignore"):
            inv_norm = 1 / np.sqrt(np.square(rows).sum(axis=1, keepdims=True))
        clipped = inv_norm >= dtype(1e7)
        inv_norm = np.where(clipped, dtype(1e7), inv_norm).astype(rows.dtype)
        unit = rows * inv_norm
        size = rows.shape[0]
        scale = dtype(self.factor * 0.5 / (size * (size - 1.0) / 2.0))
        return rows, unit, inv_norm, clipped, unit @ unit.T * (1 - np.eye(size, dtype=rows.dtype)), scale

    def __call__(self, x: np.ndarray):
        _, _, _, _, product, scale = self._parts(x)
        return scale * np.abs(product).sum()

    def gradient(self, x: np.ndarray) -> np.ndarray:
        rows, unit, inv_norm, clipped, product, scale = self._parts(x)
        d_unit = scale * 2 * (np.sign(product) @ unit)  # (the product is symmetric)
        along = np.where(clipped, 0, (unit * d_unit).sum(axis=1, keepdims=True))
        d_rows = inv_norm * (d_unit - unit * along)
        return d_rows if self.mode == "rows" else d_rows.T

    def get_config(self) -> dict:
        return {"factor": self.factor, "mode": self.mode}

    def __repr__(self) -> str:
        return f"OrthogonalRegularizer(factor={self.factor}, mode={self.mode!r})"


def l1_l2(l1: float = 0.01, l2: float = 0.01) -> L1L2:
    """Keras's ``l1_l2`` shortcut (0.01 each)."""
    return L1L2(l1=l1, l2=l2)


#: Keras's lower-case spellings of the classes (``keras.regularizers.l2(0.01)``)
l1, l2 = L1, L2
orthogonal_regularizer = OrthogonalRegularizer

_BY_NAME = {"l1": L1, "L1": L1, "l2": L2, "L2": L2, "l1_l2": l1_l2, "L1L2": L1L2, "l1l2": L1L2,
            "orthogonal_regularizer": OrthogonalRegularizer, "OrthogonalRegularizer": OrthogonalRegularizer}
_NOT_IMPLEMENTED: set = set()


def get(identifier):
    """A regularizer from an object, a name or a Keras config dict (None stays None)."""
    if identifier is None or isinstance(identifier, (L1L2, OrthogonalRegularizer)):
        return identifier
    if hasattr(identifier, "get_config") and not isinstance(identifier, (str, dict)):  # Keras's object: its config
        return get({"class_name": type(identifier).__name__, "config": dict(identifier.get_config())})
    if isinstance(identifier, str):
        if identifier in _BY_NAME:
            return _BY_NAME[identifier]()
        kind = "is not implemented by fastgru" if identifier in _NOT_IMPLEMENTED else "is unknown"
        raise UnsupportedKerasFeature(f"regularizer {identifier!r} {kind} (fastgru has l1, l2, l1_l2 / L1, L2, L1L2)")
    if isinstance(identifier, dict):
        name, config = identifier.get("class_name"), identifier.get("config", {})
        if not isinstance(name, str) or not isinstance(config, dict):
            raise TypeError(f"a regularizer config needs a class_name string and a config dict, received "
                            f"{str(identifier)[:80]}")
        if name == "OrthogonalRegularizer":
            unknown = set(config) - {"factor", "mode"}
            if unknown:
                raise UnsupportedKerasFeature(f"regularizer {name}: option(s) {sorted(unknown)} are not supported")
            return OrthogonalRegularizer(**config)
        if name not in ("L1", "L2", "L1L2"):
            get(name)  # the refusal for an unknown class
            raise UnsupportedKerasFeature(f"regularizer class {name!r} is not implemented by fastgru")
        unknown = set(config) - {"l1", "l2"}
        if unknown:
            raise UnsupportedKerasFeature(f"regularizer {name}: option(s) {sorted(unknown)} are not supported")
        cls = {"L1": L1, "L2": L2, "L1L2": L1L2}[name]
        if name == "L1L2":
            return L1L2(l1=config.get("l1", 0.0), l2=config.get("l2", 0.0))
        return cls(config.get(name.lower(), 0.01))
    raise TypeError(f"a regularizer should be a name ('l1', 'l2', 'l1_l2'), a Keras config dict or a "
                    f"fastgru.regularizers object, received {type(identifier).__name__}")


def serialize(regularizer) -> dict | None:
    """The Keras 3 config of a regularizer (what ``save`` writes; Keras reads it back)."""
    if regularizer is None:
        return None
    return {"module": "keras.regularizers", "class_name": regularizer.keras_name,
            "config": regularizer.get_config(), "registered_name": None}
