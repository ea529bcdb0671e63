"""``TimeDistributed(layer)``, Keras 3 semantics: the inner layer applied to every time slice of a
(B, T, ...) input, its output (B, T, ...); the inner layer is built for one slice, (B, ...).

Keras runs the inner layer once per step. fastgru runs it once on the (B*T, ...) array (no Python loop
over time), which is the same computation for every inner layer that treats the rows of a batch
independently: Dense, Activation, Dropout, the activation layers, LayerNormalization,
UnitNormalization, Normalization, the noise layers, ActivityRegularization, and BatchNormalization at
inference (moving statistics). A BatchNormalization that trains computes its statistics per step,
over the batch only, and moves its moving statistics once per step, as Keras's loop does: there, and
only there, fastgru calls the inner layer step by step (also a nested model with such a layer inside).
Masks: the wrapper passes the mask on (as Keras); a BatchNormalization inside gets each step's (B,) mask
for its statistics, as in Keras. A TimeDistributed read
from a tf_keras (Keras 2) file keeps tf_keras's way: one call on all B*T rows, the mask unused there.
A script's own layer (``layers.custom``) runs step by step, as Keras runs it, and trains so (its call
traced once for the (B, ...) step), each step given its (B,) slice of a (B, T) mask.

Weights are the inner layer's, in its order; in a ``.keras`` file they sit under
``<path>/layer/vars``. An activity regularizer of the inner layer (an ``ActivityRegularization``
inside) adds nothing, as in Keras 3, whose TimeDistributed runs the inner layer's ``call``, which skips
it; the wrapper's own ``activity_regularizer`` applies to its whole output.
"""

from __future__ import annotations

import numpy as np

from ..variables import built_within
from .base import Layer, WrapperTrainable
from .registry import Anything, KerasContract, register_layer, validate_params

#: the inner layers fastgru distributes over time (each acts on the rows of its input independently)
INNER_LAYERS = ("Dense", "Activation", "Dropout", "ReLU", "LeakyReLU", "ELU", "Softmax", "PReLU",
                "LayerNormalization", "BatchNormalization", "UnitNormalization", "Normalization",
                "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization", "GRU", "LSTM",
                "SimpleRNN", "Bidirectional", "Conv1D", "GroupNormalization", "RMSNormalization", "Identity",
                # a CNN-LSTM's per-step feature extractor: TimeDistributed(Conv1D), (MaxPooling1D), (Flatten)
                "MaxPooling1D", "AveragePooling1D", "GlobalMaxPooling1D", "GlobalAveragePooling1D", "Flatten",
                "Reshape", "Permute", "RepeatVector", "ZeroPadding1D", "Cropping1D", "UpSampling1D",
                "SpatialDropout1D", "Conv1DTranspose", "DepthwiseConv1D", "SeparableConv1D", "Embedding",
                # a video's CNN-RNN: the 2-D front on each frame
                "Conv2D", "MaxPooling2D", "AveragePooling2D", "GlobalMaxPooling2D", "GlobalAveragePooling2D",
                "ZeroPadding2D", "Cropping2D", "UpSampling2D", "SpatialDropout2D", "Rescaling", "DepthwiseConv2D",
                "SeparableConv2D", "Conv2DTranspose", "RandomFlip", "RandomTranslation", "RandomRotation", "RandomZoom",
                "RandomContrast", "RandomBrightness", "Resizing", "CenterCrop")


def _inner_from_config(entry):
    """A fastgru layer from ``{"class_name": ..., "config": {...}}`` (Keras 3's nested layer entry)."""
    from . import registry

    if isinstance(entry, Layer) or getattr(entry, "_fg_model", False) or type(entry).__name__ == "Sequential":
        return entry
    if not isinstance(entry, dict) or not isinstance(entry.get("class_name"), str):
        raise TypeError(f"TimeDistributed: 'layer' should be a fastgru layer or a layer config, received "
                        f"{type(entry).__name__}")
    if entry["class_name"] in ("Functional", "Model", "Sequential"):  # a nested model (Model.get_config's entry)
        kind = "Sequential" if entry["class_name"] == "Sequential" else "Functional"
        return registry.model_class(kind).from_config(dict(entry.get("config") or {}))
    cls = registry.lookup(entry["class_name"])
    if cls is None:
        raise ValueError(f"TimeDistributed: unknown inner layer class {entry['class_name']!r}")
    config = dict(entry.get("config") or {})
    return cls.from_config(config)


def _sequential_as_functional(sequential):
    """A built ``Sequential`` as the Functional model of its layers (the same layer objects), which
    TimeDistributed runs on each step."""
    from . import registry

    x = registry.model_class("Input")(batch_shape=sequential.input_shape)
    return registry.model_class("Functional")(x, sequential(x), name=sequential.name)


@register_layer
class TimeDistributed(WrapperTrainable, Layer):
    """The inner ``layer`` on each time step of (B, T, ...) inputs (see the module docstring)."""

    accepts_mask_argument = True  # (its Keras call takes mask=: graph.symbolic_call)

    _wrapped = ("layer",)

    keras = KerasContract(names=("TimeDistributed",), weights="wrapper")
    parameter_constraints = {"layer": [Anything()]}
    supports_masking = True
    inner_layers = INNER_LAYERS
    contract_example = {"kwargs": {"layer": lambda dtype: __import__("fastgru").layers.Dense(3, dtype=dtype)}}

    def __init__(self, layer, **kwargs):
        super().__init__(**kwargs)
        validate_params(f"TimeDistributed {self.name!r}", self.parameter_constraints, {"layer": layer})
        layer = _inner_from_config(layer)
        if type(layer).__name__ == "Sequential" and getattr(layer, "built", False):  # as the Model of its layers
            layer = _sequential_as_functional(layer)
        if getattr(layer, "_fg_model", False):  # a Functional model (a hierarchical model's sentence encoder)
            layer._single()
        elif type(layer).__name__ == "Sequential":  # not built yet: built on each step's shape by build()
            pass
        elif type(layer).__name__ not in INNER_LAYERS and not getattr(type(layer), "_fg_user_layer", False):
            raise ValueError(f"TimeDistributed {self.name!r}: TimeDistributed({type(layer).__name__}) is not supported "
                             f"(inner layers that act on each step: {', '.join(INNER_LAYERS)})")
        self.layer = layer

    # ---- shapes and weights ---------------------------------------------------------------------
    def build(self, input_shape: tuple) -> None:
        if len(input_shape) < 3:
            raise ValueError(f"TimeDistributed {self.name!r} expects inputs of rank 3 or more (batch, steps, ...), "
                             f"received shape {tuple(input_shape)}")
        if not self.layer.built:
            built_within(self.layer, self)
            self.layer.build((input_shape[0],) + tuple(input_shape[2:]))
            if type(self.layer).__name__ == "Sequential":  # (a video's per-frame CNN given without an Input)
                self.layer = _sequential_as_functional(self.layer)
                self.layer._single()
        elif tuple(self.layer.input_shape[1:]) != tuple(input_shape[2:]):
            raise ValueError(f"TimeDistributed {self.name!r}: the inner layer was built for steps of shape "
                             f"{self.layer.input_shape[1:]}, received inputs {tuple(input_shape)}")
        super().build(input_shape)

    def compute_output_shape(self, input_shape: tuple):
        if getattr(self.layer, "_fg_model", False):
            return (input_shape[0], input_shape[1]) + tuple(self.layer.output_shape[1:])
        inner = self.layer.compute_output_shape((input_shape[0],) + tuple(input_shape[2:]))
        return (inner[0], input_shape[1]) + tuple(inner[1:])

    @property
    def weights(self) -> list[np.ndarray]:
        return self.layer.weights

    @property
    def trainable_weights(self) -> list[np.ndarray]:
        return self.layer.trainable_weights if self.trainable else []

    def _inner_layers(self) -> list:
        """The layers holding the weights: the inner layer, or a Functional model's (nested models expanded)."""
        def leaves(obj):
            if getattr(obj, "_fg_model", False):
                return [leaf for layer in obj._weighted_layers for leaf in leaves(layer)]
            if type(obj).__name__ == "Sequential":
                return [leaf for layer in obj._layers_and_ops for leaf in leaves(layer)]
            return [obj]
        return leaves(self.layer)

    @property
    def weight_paths(self) -> list[str]:
        if getattr(self.layer, "_fg_model", False):
            return [f"{layer.name}/{p}" for layer in self._inner_layers() for p in layer.weight_paths]
        return self.layer.weight_paths

    def _weights_changed(self) -> None:
        for layer in self._inner_layers():
            layer._weights_changed()

    # ---- computing ------------------------------------------------------------------------------
    def _check(self, x) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != len(self.input_shape) or any(e is not None and e != s for e, s in
                                                  zip(self.input_shape[2:], x.shape[2:])):
            raise ValueError(f"TimeDistributed {self.name!r} expects input shape {self.input_shape}, received shape "
                             f"{x.shape}")
        return x

    #: tf_keras's TimeDistributed (a layer read from a Keras 2 file) runs the inner layer once on the (B*T, ...)
    #: rows: a training BatchNormalization takes its statistics over all of them, the masked ones left out
    keras2_semantics = False

    def use_keras2_semantics(self) -> None:
        self.keras2_semantics = True

    def _user_layer(self) -> bool:
        """A script's own layer inside (``layers.custom``): run step by step, as Keras runs it (its call may
        not treat the rows of a batch on their own)."""
        return getattr(type(self.layer), "_fg_user_layer", False)

    def _per_step(self, training: bool) -> bool:
        """True for a BatchNormalization that trains, alone or inside a nested model: batch statistics per
        step, as Keras 3's loop; and for a script's own layer."""
        return self._user_layer() or (training and not self.keras2_semantics
                and any(type(leaf).__name__ == "BatchNormalization" and leaf.trainable
                        for leaf in self._inner_layers()))

    def _step_mask(self, mask, i: int):
        """Step ``i``'s mask for the per-step path: (B,) for a BatchNormalization (its statistics leave masked
        rows out, as in Keras); a nested model gets a mask only of rank 3 or more (the words of each step),
        as the rows path passes it."""
        if mask is None:
            return None
        mask = np.asarray(mask)
        return mask[:, i] if mask.ndim >= 3 or type(self.layer).__name__ == "BatchNormalization" \
            or self._user_layer() else None

    def forward(self, x, mask=None, training: bool = True):
        x = self._check(x)
        b, t = x.shape[:2]
        if self._per_step(training):
            steps = [self.layer.forward(x[:, i], mask=self._step_mask(mask, i), training=True) for i in range(t)]
            return np.stack([y for y, _ in steps], axis=1), ("steps", [c for _, c in steps])
        y, cache = self.layer.forward(x.reshape((b * t,) + x.shape[2:]), mask=self._rows_mask(mask, b * t),
                                      training=training)
        return y.reshape((b, t) + y.shape[1:]), ("rows", cache)

    def _rows_mask(self, mask, rows: int):
        """The mask the inner layer gets on the (B*T, ...) rows: a mask of rank 3 or more (an Embedding's
        (B, T, W) over (B, T, W) tokens) reshaped to (B*T, W, ...), as Keras passes each step's slice (a
        recurrent inner layer skips the padded words); a (B, T) mask only to an inner BatchNormalization of a
        tf_keras file (its batch moments leave masked steps out; Keras 3's rows path passes none)."""
        if mask is None:
            return None
        mask = np.asarray(mask)
        if mask.ndim >= 3:
            return mask.reshape((rows,) + mask.shape[2:])
        if not self.keras2_semantics or type(self.layer).__name__ != "BatchNormalization":
            return None
        return mask.reshape(rows)

    def compute_mask(self, x, mask=None):
        """The input's mask, as Keras 3 passes it on; tf_keras's for a mask of rank 3 or more (words of each
        step): the inner layer's own mask on the rows, or — when it gives none (a GRU returning its last
        state) — whether each step has any unmasked word, (B, T), which a recurrent layer over the steps takes."""
        if mask is None or not self.keras2_semantics or np.ndim(mask) < 3:
            return mask
        mask, x = np.asarray(mask), np.asarray(x)
        b, t = mask.shape[:2]
        inner = self.layer.compute_mask(x.reshape((b * t,) + x.shape[2:]), mask.reshape((b * t,) + mask.shape[2:]))
        if inner is None:
            return mask.reshape(b, t, -1).any(axis=-1)
        return np.asarray(inner).reshape((b, t) + np.shape(inner)[1:])

    def call(self, x, mask=None, training: bool = False):
        x = self._check(x)
        b, t = x.shape[:2]
        if self._user_layer():
            return np.stack([np.asarray(self.layer.call(x[:, i], mask=self._step_mask(mask, i), training=training))
                             for i in range(t)], axis=1)
        if self._per_step(training):
            return self.forward(x, mask, training)[0]
        y = self.layer.call(x.reshape((b * t,) + x.shape[2:]), mask=self._rows_mask(mask, b * t), training=training)
        return y.reshape((b, t) + y.shape[1:])

    def backward(self, dy, cache, need_dx: bool = True):
        kind, inner = cache
        dy = np.asarray(dy)
        b, t = dy.shape[:2]
        if kind == "steps":
            from ..plan_walk import add_grads

            grads, dxs = None, []
            for i in range(t):
                dx, g = self.layer.backward(dy[:, i], inner[i], need_dx=need_dx)
                dxs.append(dx)
                grads = add_grads(grads, g)
            dx = np.stack(dxs, axis=1) if need_dx and all(d is not None for d in dxs) else None
        else:
            dx, grads = self.layer.backward(dy.reshape((b * t,) + dy.shape[2:]), inner, need_dx=need_dx)
            if dx is not None:
                dx = dx.reshape((b, t) + dx.shape[1:])
        return dx, (list(grads or []) if self.trainable else [])

    def get_config(self) -> dict:
        config = super().get_config()
        functional = getattr(self.layer, "_fg_model", False)
        config["layer"] = {"module": "keras.layers", "class_name": "Functional" if functional else
                           type(self.layer).__name__, "config": self.layer.get_config(), "registered_name": None}
        return config
