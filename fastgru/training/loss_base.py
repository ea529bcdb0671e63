"""The base of fastgru's losses: :class:`Loss` (Keras's reductions, masks and sample weights, the
value and its gradient) and the helpers every loss uses. The losses themselves are in
:mod:`fastgru.training.losses` and :mod:`fastgru.training.more_losses`."""

from __future__ import annotations

import numpy as np

from ..eager import eager
from ..errors import UnsupportedKerasFeature
from ..layers.names import snake_case

_EPSILON = 1e-7  # keras.backend.epsilon()


def _clip_and_mask(p, dtype):
    """Keras's clip of probabilities to ``[eps, 1 - eps]`` and where its gradient passes (inside, bounds included)."""
    lo, hi = dtype.type(_EPSILON), dtype.type(1.0 - _EPSILON)
    inside = (p >= lo) & (p <= hi)  # tf.clip_by_value passes the gradient at the bounds
    return np.clip(p, lo, hi), inside


def _sigmoid_xent(x, t):
    """``tf.nn.sigmoid_cross_entropy_with_logits(labels=t, logits=x)`` and its autodiff gradient in ``x``."""
    dt = x.dtype.type
    pos = x >= 0
    neg_abs = np.where(pos, -x, x)
    e = np.exp(neg_abs)
    elem = np.where(pos, x, dt(0)) - x * t + np.log1p(e)
    s = e / (dt(1) + e)
    return elem, (pos.astype(x.dtype) - t) + np.where(pos, -s, s)


def _float_dtype(a: np.ndarray) -> np.dtype:
    return a.dtype if np.issubdtype(a.dtype, np.floating) else np.dtype(np.float32)


def _same_rank(x1: np.ndarray, x2: np.ndarray, expand_rank_1: bool = True):
    """Keras's ``squeeze_or_expand_to_same_rank``: fix a rank difference of one trailing 1-dim."""
    r1, r2 = x1.ndim, x2.ndim
    if r1 == r2 + 1 and x1.shape[-1] == 1:
        if r2 == 1 and expand_rank_1:
            x2 = x2[..., None]
        else:
            x1 = x1[..., 0]
    elif r2 == r1 + 1 and x2.shape[-1] == 1:
        if r1 == 1 and expand_rank_1:
            x1 = x1[..., None]
        else:
            x2 = x2[..., 0]
    return x1, x2


def _sum_to_shape(g: np.ndarray, shape: tuple) -> np.ndarray:
    """``g`` summed over the axes along which an array of ``shape`` was broadcast to it."""
    g = g.sum(axis=tuple(range(g.ndim - len(shape)))) if g.ndim > len(shape) else g
    axes = tuple(i for i, (n, m) in enumerate(zip(shape, g.shape)) if n == 1 and m != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


def _weights(values_shape, dtype, sample_weight, mask, reduction, unbroadcast: bool = False):
    """Per-value weights (mask merged into sample weight as Keras's ``apply_mask``) or None; with ``unbroadcast``,
    those weights before they are broadcast to the values (brought to their rank: what Keras sums for
    ``mean_with_sample_weight``)."""
    w = None
    if mask is not None:
        mask = np.asarray(mask).astype(bool)
        if reduction in ("sum_over_batch_size", "mean"):
            total, valid = dtype.type(mask.size), dtype.type(mask.sum())
            scale = total / valid if valid else dtype.type(0)
            w = np.where(mask, scale, dtype.type(0)).astype(dtype)
        else:
            w = mask.astype(dtype)
    if sample_weight is not None:
        sw = np.asarray(sample_weight, dtype=dtype)
        if w is not None:
            w, sw = _same_rank(w, sw)
            try:
                sw = sw * w
            except ValueError:
                raise ValueError(f"sample_weight of shape {sw.shape} does not broadcast to the output's mask of "
                                 f"shape {w.shape} (the per-step losses of a sequence output take (batch, steps) "
                                 "weights)") from None
        w = sw
    if w is None:
        return None
    v2, w2 = _same_rank(np.empty(values_shape, dtype=bool), w)
    if unbroadcast:
        return w2
    try:
        return np.broadcast_to(w2, v2.shape).reshape(values_shape)
    except ValueError:
        raise ValueError(
            f"sample_weight/mask of shape {w.shape} does not broadcast to the per-sample loss "
            f"values of shape {values_shape}"
        ) from None


class Loss:
    """Base class. Subclasses implement ``_values(y_true, y_pred, logits)``.

    ``_values`` gets ``y_true`` (already aligned, in the compute dtype; integer labels for SCCE)
    and ``y_pred`` of shape ``(..., C)`` and returns ``(values, dvalues)``: ``values`` of shape
    ``y_pred.shape[:-1]`` and ``dvalues[..., j] = d values[...] / d y_pred[..., j]``.
    """

    #: activation whose pre-activation Keras uses as logits ("sigmoid", "softmax" or None)
    logits_activation: str | None = None
    #: whether :meth:`value_and_grad_from_logits` is defined (the three crossentropies)
    supports_logits: bool = False
    from_logits: bool = False

    #: how a loss computing its values in ``call`` (a script's function or ``Loss`` subclass) runs: set by
    #: ``training/function_loss.py`` (its values from the call, its gradient from a trace of it)
    _run_call = None
    #: how a loss called on symbolic tensors (inside a custom loss's traced call) records itself: set by
    #: ``training/loss_node.py``
    _symbolic_call = None

    def __init__(self, name: str | None = None, reduction: str = "sum_over_batch_size", dtype=None):
        if reduction == "auto":  # Keras 2's name (tf_keras files): sum_over_batch_size wherever fit uses it
            reduction = "sum_over_batch_size"
        if reduction not in ("sum_over_batch_size", "mean", "sum", "mean_with_sample_weight", "none", None):
            raise ValueError(f"reduction must be 'sum_over_batch_size', 'mean', 'sum', 'mean_with_sample_weight', "
                             f"'none' or None; received {reduction!r}")
        self.name = name or (type(self).__name__ if type(self).__module__.startswith("fastgru.")
                             else snake_case(type(self).__name__))  # (a script's class: Keras's automatic name)
        self.reduction = reduction

    # -- public API ---------------------------------------------------------------------------
    def __call__(self, y_true, y_pred, sample_weight=None, mask=None) -> float:
        """Reduced loss as a Python float (with Keras's ``.numpy()``: ``fastgru.eager.EagerScalar``); with
        ``reduction=None`` or ``"none"``, the values per sample (an array)."""
        if any(getattr(v, "_fg_symbolic", False) for v in (y_true, y_pred, sample_weight)):
            if mask is not None:
                raise UnsupportedKerasFeature(f"loss {self.name!r} on symbolic tensors with a mask (weight the values "
                                              "with sample_weight)")
            return Loss._symbolic_call(self, y_true, y_pred, sample_weight)  # (a node of a custom loss's trace)
        return eager(self._run(y_true, y_pred, self.from_logits, sample_weight, mask, grad=False)[0])

    def value_and_grad(self, y_true, y_pred, sample_weight=None, mask=None) -> tuple[float, np.ndarray]:
        """Return ``(loss, dloss/dy_pred)``; the gradient has y_pred's shape and float dtype.

        ``mask`` (bool, shape ``y_pred.shape[:-1]`` e.g. ``(B, T)``) drops masked positions and
        averages over the valid ones, as Keras does when the output carries a Keras mask.
        """
        return self._run(y_true, y_pred, self.from_logits, sample_weight, mask, grad=True)

    def value_and_grad_from_logits(self, y_true, logits, sample_weight=None, mask=None):
        """Like :meth:`value_and_grad` but treating the input as logits (``from_logits=True``)."""
        if not self.supports_logits:
            raise TypeError(f"{type(self).__name__} has no logits form")
        return self._run(y_true, logits, True, sample_weight, mask, grad=True)

    def uses_output_logits(self, output_activation: str | None) -> bool:
        """Whether Keras 3 (TensorFlow) computes this loss from the pre-activation of an output made by
        ``output_activation``: the crossentropies read the logits a sigmoid/softmax tags its output with."""
        return self.supports_logits and output_activation in ("sigmoid", "softmax")

    def get_config(self) -> dict:
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config: dict) -> Loss:
        config = {k: v for k, v in config.items() if k not in ("dtype", "fn")}
        if config.get("axis", -1) not in (-1, None):
            raise ValueError(f"only axis=-1 is supported; received axis={config['axis']}")
        config.pop("axis", None)
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    # -- internals ----------------------------------------------------------------------------
    #: whether the output is broadcast against the targets before the values are computed (Keras's arithmetic);
    #: a loss that normalizes each operand along its own last axis first (cosine similarity) broadcasts itself
    broadcasts_output = True
    #: whether targets and output must have one shape (Keras's binary crossentropies check it, refusing targets
    #: of another width, where the other losses broadcast)
    same_shape = False

    def _align(self, y_true, y_pred):
        """Return (y_true, y_pred) aligned as Keras's LossFunctionWrapper does."""
        y_true, y_pred = _same_rank(y_true, y_pred)
        if self.same_shape and y_true.shape[1:] != y_pred.shape[1:]:
            raise ValueError(f"{self.name}: targets and output must have the same shape, as in Keras; received targets "
                             f"of shape {y_true.shape} for an output of shape {y_pred.shape}")
        return y_true.astype(y_pred.dtype, copy=False), y_pred

    def per_sample(self, y_true, y_pred) -> np.ndarray:
        """The unreduced values, one per sample (and step): Keras's loss *function* of this class
        (``keras.losses.mean_squared_error(y_true, y_pred)``); no weights, masks or reduction."""
        return self._aligned_values(y_true, y_pred, self.from_logits)[1]

    def _aligned_values(self, y_true, y_pred, logits):
        """``(y_true, values, dvalues, dtype, orig_shape, out_shape)``: targets and output aligned as Keras's, then the
        loss's values and their derivatives by the (broadcast) output."""
        y_pred = np.asarray(y_pred)
        dtype = _float_dtype(y_pred)
        orig_shape = y_pred.shape
        yp = y_pred.astype(dtype, copy=False)
        yt, yp = self._align(np.asarray(y_true), yp)
        if yp.ndim == 0:
            raise ValueError(f"y_pred must have at least one dimension; received shape {orig_shape}")
        out_shape = yp.shape
        if self.broadcasts_output and yt.ndim == yp.ndim and yt.shape != yp.shape:  # (as Keras's arithmetic)
            try:
                yp = np.broadcast_to(yp, np.broadcast_shapes(yt.shape, yp.shape))
            except ValueError:
                raise ValueError(f"{type(self).__name__}: targets of shape {np.shape(y_true)} do not fit the model's "
                                 f"output of shape {orig_shape}") from None
        try:
            values, dvalues = self._values(yt, yp, logits)
        except ValueError as exc:  # (NumPy's broadcasting error, named)
            raise ValueError(f"{type(self).__name__}: targets of shape {np.shape(y_true)} do not fit the model's "
                             f"output of shape {orig_shape} ({exc})") from None
        return yt, values, dvalues, dtype, orig_shape, out_shape

    def _run(self, y_true, y_pred, logits, sample_weight, mask, grad):
        if type(self)._values is Loss._values and Loss._run_call is not None and callable(getattr(self, "call", None)):
            return Loss._run_call(self, y_true, y_pred, sample_weight, mask, grad)
        yt, values, dvalues, dtype, orig_shape, out_shape = self._aligned_values(y_true, y_pred, logits)
        valid = self._valid_positions(yt)
        if valid is not None:  # Keras ANDs the loss's own mask into the output's (Loss.__call__)
            mask = valid if mask is None else np.logical_and(np.asarray(mask).astype(bool), valid)
        loss, upstream = self._reduced(values, dtype, sample_weight, mask, grad)
        if not grad:
            return loss, None
        g = (dvalues * upstream[..., None]).astype(dtype, copy=False)
        if g.shape != out_shape:  # (the targets broadcast against the output: the gradient summed back)
            g = _sum_to_shape(g, out_shape)
        return float(loss), g.reshape(orig_shape)

    def _reduced(self, values, dtype, sample_weight, mask, grad):
        """``(loss, d loss / d values)`` of the loss's ``values`` weighted by ``sample_weight`` and ``mask`` and reduced
        as Keras's ``reduce_weighted_values`` (``(values, None)``: the weighted values, unreduced, for ``"none"``)."""
        w = _weights(values.shape, dtype, sample_weight, mask, self.reduction)
        weighted = values if w is None else values * w
        if self.reduction in ("none", None):  # (Keras's unreduced values: one per sample, weighted and masked)
            if grad:
                raise UnsupportedKerasFeature(f"loss {self.name!r} with reduction={self.reduction!r} gives one value "
                                              "per sample: fit and evaluate need a reduced loss "
                                              "('sum_over_batch_size')")
            if weighted.ndim == 1 and np.ndim(sample_weight) == 2 and np.shape(sample_weight)[-1] == 1:
                weighted = weighted[:, None]  # (Keras expands one value per sample to the weights' (batch, 1))
            return weighted.astype(dtype, copy=False), None
        n = weighted.size if self.reduction != "sum" else 1
        if self.reduction == "mean_with_sample_weight" and w is not None:  # (Keras: by the weights' sum, before
            # they are broadcast to the values: (B, 1) weights of (B, C) values sum over the batch)
            n = float(np.sum(_weights(values.shape, dtype, sample_weight, mask, self.reduction, True), dtype=dtype))
        divisor = dtype.type(n)
        loss = np.sum(weighted, dtype=dtype) / divisor if n else dtype.type(0)
        if not grad:
            return float(loss), None
        upstream = np.full(values.shape, dtype.type(1) / divisor if n else 0, dtype=dtype)
        return float(loss), (upstream if w is None else upstream * w)

    def __getstate__(self) -> dict:  # (pickled and copied without the traces of a function loss's call)
        return {k: v for k, v in self.__dict__.items() if k != "_fg_loss_traces"}

    def _values(self, y_true, y_pred, logits):  # pragma: no cover - abstract
        raise NotImplementedError

    def _valid_positions(self, y_true) -> np.ndarray | None:
        """A bool mask of shape ``values.shape`` the loss sets itself (SCCE's ``ignore_class``), or None."""
        return None
