"""Keras 3's ``MultiHeadAttention`` on rank-3 inputs (attention over the steps axis).

Called as Keras calls it: ``layer(query, value, key=None, value_mask=None, key_mask=None,
attention_mask=None, return_attention_scores=False, training=None, use_causal_mask=False)`` with query
(B, T, Dq), value (B, S, Dv), key (B, S, Dk) (key defaults to value). Each input is projected per head
(Keras's EinsumDense ``query``, ``key``, ``value``: kernels (D, num_heads, key_dim|value_dim), biases
(num_heads, key_dim|value_dim)), the scores ``(Q / sqrt(key_dim)) K^T`` (B, heads, T, S) go through a
masked softmax over S, the weighted values are projected back by ``attention_output`` (kernel
(num_heads, value_dim, *output_shape), bias output_shape; output_shape defaults to Dq).

Masks, as Keras 3 builds them: the query's and value's masks (from Masking / Embedding upstream; the
key's when a key is given) and ``attention_mask`` (B, T, S) are combined with ``&`` (with the causal
mask too when ``use_causal_mask``). An explicit ``query_mask=`` is ignored, as Keras 3 ignores it (it
reads the query tensor's own mask); the output carries the query's mask; outputs at masked query steps
are not zeroed. Keras computes two ways, and fastgru follows both: with ``dropout > 0`` or
``return_attention_scores`` the masked probabilities are set to zero after the softmax (a fully masked
row attends to nothing), otherwise Keras's fused dot-product attention runs and a fully masked row
attends to all steps evenly.

Every step is a batched NumPy product (no Python loop over batch, heads or time). ``dropout`` acts on the
attention probabilities in training with fastgru's seeded generator (Keras's statistics, not
TensorFlow's numbers). ``sliding_window`` (Keras 3.15's symmetric band) is applied with the other masks.
``attention_axes`` other than the steps axis, ``use_gate`` and inputs of rank other than 3 are refused with
``UnsupportedKerasFeature``.
"""

from __future__ import annotations

import math

import numpy as np

from .. import keras_masks
from .._threads import get_batch_invariant
from ..errors import UnsupportedKerasFeature
from ..ops.invariant import matmul_rows
from ..random import make_rng
from .base import BUILD_LOCK, Layer, record_symbolic_call, weights_lock
from .einsum_dense import add_kernel_with_fans
from .multi_head_inputs import (
    _ROLES,
    _AttentionAxes,
    _OutputShape,
    call_arrays,
    carried_masks,
    constant_attention_mask,
    gather_call,
)
from .registry import (
    ANY,
    NONE,
    Boolean,
    InitializerSpec,
    Integer,
    KerasContract,
    Real,
    register_layer,
    validate_params,
)

#: what Keras's Softmax layer puts at masked scores (the path with attention scores or dropout)
_SOFTMAX_NEGATIVE = -1.0e9
#: what Keras's fused dot-product attention (TensorFlow backend) puts there: -0.7 * 3.38953e38
_FUSED_NEGATIVE = -0.7 * 3.38953e38
#: the sublayers holding the weights, Keras 3's weights-file groups and legacy-h5 names
_PROJECTIONS = (("query", "query_dense"), ("key", "key_dense"), ("value", "value_dense"),
                ("attention_output", "output_dense"))


@register_layer
class MultiHeadAttention(Layer):
    """Multi-head scaled dot-product attention (see the module docstring). Weights, in Keras's order:
    query/kernel, query/bias, key/kernel, key/bias, value/kernel, value/bias, attention_output/kernel,
    attention_output/bias (the biases when ``use_bias``)."""

    accepts_mask_argument = True  # (its Keras call takes mask=: graph.symbolic_call)

    keras = KerasContract(names=("MultiHeadAttention",),
                          fixed={"use_gate": False, "flash_attention": ANY,
                                 "softmax_robust_masking": ANY, "query_shape": ANY, "key_shape": ANY,
                                 "value_shape": ANY})
    parameter_constraints = {"num_heads": [Integer(1)], "key_dim": [Integer(1)], "value_dim": [NONE, Integer(1)],
                             "dropout": [Real(0.0, 1.0, open_high=True)], "use_bias": [Boolean()],
                             "output_shape": [NONE, _OutputShape()], "attention_axes": [NONE, _AttentionAxes()],
                             "kernel_initializer": [InitializerSpec()], "bias_initializer": [InitializerSpec()],
                             "sliding_window": [NONE, Integer(1)], "seed": [NONE, Integer(0)]}
    weight_names = tuple(f"{p}/{w}" for p, _ in _PROJECTIONS for w in ("kernel", "bias"))
    regularizer_options = {"kernel_regularizer": "query/kernel", "bias_regularizer": "query/bias"}
    supports_masking = True
    _takes_list = True  # the Functional graph records it on a list of tensors (``layout`` names them)
    #: the call options a Functional node keeps (fastgru.graph.symbolic_call)
    _call_options = ("layout", "return_attention_scores", "use_causal_mask")
    #: Keras 3's call removes the masks of its query, value and key tensors (``set_keras_mask(x, None)``), so
    #: the layers that run after it in the Functional graph see those tensors unmasked; fastgru's graph does
    #: the same (False for a layer read from a Keras 2 file: tf_keras leaves the masks)
    drops_input_masks = True
    #: Keras records no ``mask=`` in its nodes: it reads the masks its tensors carry when it runs
    #: (``plan_walk._reads_runtime``)
    reads_runtime_masks = True
    #: the tensor arguments of its call, in Keras's order (fastgru.io reads and writes Keras's call configs)
    call_roles = _ROLES
    #: how tests/test_layer_contract.py builds one (query and value of different lengths)
    contract_example = {"kwargs": {"num_heads": 2, "key_dim": 3}, "inputs": [(5, 4), (6, 4)]}

    def __init__(self, num_heads: int, key_dim: int, value_dim: int | None = None, dropout: float = 0.0,
                 use_bias: bool = True, output_shape=None, attention_axes=None, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_constraint=None, bias_constraint=None, use_gate: bool = False,
                 sliding_window=None, flash_attention=None, seed=None, **kwargs):
        activity = kwargs.get("activity_regularizer")
        super().__init__(kernel_constraint=kernel_constraint, bias_constraint=bias_constraint, **kwargs)
        owner = f"MultiHeadAttention {self.name!r}"
        if activity is not None:
            raise UnsupportedKerasFeature(f"{owner}: option 'activity_regularizer' is not supported (Keras applies it "
                                          "to each of the four projections' outputs)")
        if use_gate:
            raise UnsupportedKerasFeature(f"{owner}: option use_gate={use_gate!r} is not supported")
        if flash_attention:
            raise UnsupportedKerasFeature(f"{owner}: option flash_attention=True is not supported")
        self.__dict__.update(validate_params(owner, self.parameter_constraints, dict(
            num_heads=num_heads, key_dim=key_dim, value_dim=value_dim, dropout=dropout, use_bias=use_bias,
            output_shape=output_shape, attention_axes=attention_axes, kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer, sliding_window=sliding_window, seed=seed)))
        if self.attention_axes is not None and self.attention_axes not in ((1,), (-2,)):
            raise UnsupportedKerasFeature(
                f"{owner}: option attention_axes={list(self.attention_axes)} is not supported (fastgru attends over "
                "the steps axis of rank-3 inputs: attention_axes None, 1 or -2)")
        self.value_dim = self.value_dim or self.key_dim
        self._output_dims = self.__dict__.pop("output_shape")  # Layer.output_shape is the built output shape
        self.output_shape = None
        # one kernel regularizer (and constraint) for the four kernels, one bias regularizer (and constraint) for
        # the four biases (as Keras)
        for table in ("weight_regularizers", "weight_constraints"):
            given = getattr(self, table)
            setattr(self, table, {f"{p}/{kind}": given[f"query/{kind}"] for kind in ("kernel", "bias")
                                  if f"query/{kind}" in given for p, _ in _PROJECTIONS})
        self._rng = make_rng(self.seed)

    # ---- shapes and weights --------------------------------------------------------------------
    def _label(self) -> str:
        return f"MultiHeadAttention {self.name!r}"

    def _check_shapes(self, shapes) -> None:
        label = self._label()
        if not isinstance(shapes, (list, tuple)) or len(shapes) not in (2, 3) or \
                not all(isinstance(s, (list, tuple)) for s in shapes):
            raise ValueError(f"{label} is called on query, value (and key), received shapes {shapes!r}")
        q, v = shapes[0], shapes[1]
        k = shapes[2] if len(shapes) == 3 else v
        if len(q) != 3 or len(v) != 3 or len(k) != 3:
            raise UnsupportedKerasFeature(
                f"{label}: inputs of rank 3 (batch, steps, features) are supported, received shapes "
                f"{[tuple(s) for s in shapes]}")
        if v[1] != k[1] and None not in (v[1], k[1]):
            raise ValueError(f"{label}: value and key must have the same number of steps, received value shape "
                             f"{tuple(v)} and key shape {tuple(k)}")

    def build(self, input_shape) -> None:
        shapes = [tuple(s) for s in input_shape]
        self._check_shapes(shapes)
        shapes += shapes[1:2] if len(shapes) == 2 else []  # (no key: the value is it; calls with one and without match)
        q_dim, v_dim = int(shapes[0][-1]), int(shapes[1][-1])
        k_dim = int(shapes[2][-1]) if len(shapes) == 3 else v_dim
        out = self._output_dims or (q_dim,)
        n, kd, vd = self.num_heads, self.key_dim, self.value_dim
        for (proj, _), (dim, width) in zip(_PROJECTIONS[:3], ((q_dim, kd), (k_dim, kd), (v_dim, vd))):
            self._add_kernel(f"{proj}/kernel", (dim, self._heads(proj), width), 1)
            if self.use_bias:
                self._add_weight(f"{proj}/bias", (self._heads(proj), width), self.bias_initializer, self._rng)
        self._add_kernel("attention_output/kernel", (n, vd) + tuple(out), 2)
        if self.use_bias:
            self._add_weight("attention_output/bias", tuple(out), self.bias_initializer, self._rng)
        Layer.build(self, shapes)

    def _heads(self, projection: str) -> int:
        """The heads a projection makes (GroupQueryAttention's key and value: fewer, shared by the query's)."""
        return self.num_heads

    def _fold_heads(self, projection: str, d_projected: np.ndarray) -> np.ndarray:
        """The gradient of a projection's heads as the attention used them, onto the heads it made."""
        return d_projected

    def _add_kernel(self, name: str, shape: tuple, n_in: int) -> None:
        """A kernel whose first ``n_in`` axes are its inputs, drawn with those fans (as Keras 3's EinsumDense)."""
        add_kernel_with_fans(self, name, shape, range(n_in), self.kernel_initializer, self._rng)

    def compute_output_shape(self, input_shape, return_attention_scores: bool = False, **_options):
        shapes = [tuple(s) for s in input_shape]
        self._check_shapes(shapes)
        out = self._output_dims or (shapes[0][-1],)
        out = tuple(shapes[0][:-1]) + tuple(out)
        if return_attention_scores:
            return [out, (shapes[0][0], self.num_heads, shapes[0][1], shapes[1][1])]
        return out

    def node_input_shapes(self, shapes, options) -> list:
        """The shapes the layer is built on, from a Functional node's inputs (its ``layout``): not the
        attention mask's."""
        layout = options.get("layout") or _ROLES[:len(shapes)]
        kept = [s for s, role in zip(shapes, layout) if role != "attention_mask"]
        return kept + kept[1:2] if len(kept) == 2 else kept  # (no key: the value is it, as the call reads it)

    def keras_var_groups(self) -> list[tuple[str, int]]:
        """The Keras 3 weights-file groups below the layer's own path, with how many variables each holds."""
        n = 2 if self.use_bias else 1
        if not self.weights:  # (never built: a layer held and not called writes no groups, as Keras's)
            return []
        return [(f"{group}/vars", n) for _, group in _PROJECTIONS]

    #: tf_keras's MultiHeadAttention (a layer read from a Keras 2 file): masked scores get -1e9 added and the
    #: probabilities are never zeroed (a fully masked row attends to all steps evenly), inputs keep their masks
    keras2_semantics = False

    def use_keras2_semantics(self) -> None:
        self.keras2_semantics = True
        self.drops_input_masks = False

    def keras_build_config(self) -> dict:
        """Keras 3's build_config: the shapes its ``build(query_shape, value_shape, key_shape)`` takes."""
        shapes = {f"{role}_shape": list(s) for role, s in zip(("query", "value", "key"), self.input_shape)}
        return {"shapes_dict": shapes}

    def keras_call_arguments(self, args, masks, options) -> tuple[list, dict]:
        """(args, kwargs) of a Keras 3 node config from a Functional node's tensors (configs, in ``layout``
        order), explicit masks and call options."""
        layout = list(options.get("layout") or _ROLES[:len(args)])
        named = dict(zip(layout, args))
        kwargs = {role: named[role] for role in ("key", "attention_mask") if role in named}
        for role, m in zip(layout, masks or ()):
            if m is not None and role in ("value", "key"):
                kwargs[f"{role}_mask"] = m
        kwargs.update({k: True for k in ("return_attention_scores", "use_causal_mask") if options.get(k)})
        return [named["query"], named["value"]], kwargs

    def compute_mask(self, x, mask=None):
        if mask is None or not isinstance(mask, (list, tuple)) or mask[0] is None:
            return None
        return mask[0]

    # ---- calling ---------------------------------------------------------------------------------
    def __call__(self, query, value=None, key=None, query_mask=None, value_mask=None, key_mask=None,
                 attention_mask=None, return_attention_scores: bool = False, training: bool = False,
                 use_causal_mask: bool = False, mask=None, **kwargs):
        if mask is not None and not isinstance(mask, (list, tuple)):  # (a list: one per input, fastgru's graphs')
            raise TypeError(f"{self._label()} takes no mask= (Keras 3's neither): the query's mask comes with the "
                            "query; pass value_mask=, key_mask= or attention_mask=")
        inputs, layout, masks = self._gather(query, value, key, value_mask, key_mask, attention_mask, mask,
                                             kwargs.pop("layout", None))
        if kwargs:
            raise TypeError(f"{self._label()}: unexpected keyword arguments {sorted(kwargs)}")
        options = {"return_attention_scores": bool(return_attention_scores), "use_causal_mask": bool(use_causal_mask)}
        if any(getattr(a, "_fg_symbolic", False) or type(a).__name__ == "InputLayer" for a in inputs):
            if not any(m is not None for m in masks):
                masks = None
            inputs = constant_attention_mask(inputs, layout)
            extra = {k: v for k, v in options.items() if v}
            if layout != _ROLES[:len(layout)] or len(layout) > 2:
                extra["layout"] = list(layout)
            return record_symbolic_call(self, inputs, mask=masks, training=training, **extra)
        masks = carried_masks(inputs, layout, masks)
        arrays = [np.asarray(a) for a in inputs]
        if not self.built:
            shapes = [(None,) + a.shape[1:] for a, r in zip(arrays, layout) if r != "attention_mask"]
            with BUILD_LOCK:
                if not self.built:
                    self.build(shapes)
        with weights_lock(self).shared:
            out = self.call(arrays, mask=masks if any(m is not None for m in masks) else None, training=training,
                            layout=layout, **options)
        return keras_masks.carrying(out, masks[0])  # (the query's mask on the output, as Keras leaves it)

    def _gather(self, query, value, key, value_mask, key_mask, attention_mask, mask, layout):
        return gather_call(self, query, value, key, value_mask, key_mask, attention_mask, mask, layout)

    def _arrays(self, inputs, mask, layout):
        return call_arrays(self, inputs, mask, layout)

    def call(self, inputs, mask=None, training: bool = False, layout=None, return_attention_scores: bool = False,
             use_causal_mask: bool = False):
        (out, scores), _ = self._forward(inputs, mask, training, layout, use_causal_mask, return_attention_scores)
        return [out, scores] if return_attention_scores else out

    def forward(self, inputs, mask=None, training: bool = True, layout=None, return_attention_scores: bool = False,
                use_causal_mask: bool = False):
        (out, scores), cache = self._forward(inputs, mask, training, layout, use_causal_mask, return_attention_scores)
        return ([out, scores] if return_attention_scores else out), cache

    def _project(self, x, name, invariant):
        """(B, steps, D) -> (B, heads, steps, width) through the ``name`` projection."""
        kernel = self._params[f"{name}/kernel"].astype(x.dtype, copy=False)
        d, n, w = kernel.shape
        x2 = x.reshape(-1, d)
        y = matmul_rows(x2, kernel.reshape(d, n * w)) if invariant else x2 @ kernel.reshape(d, n * w)
        if self.use_bias:
            y += self._params[f"{name}/bias"].astype(x.dtype, copy=False).reshape(n * w)
        return y.reshape(x.shape[0], x.shape[1], n, w).transpose(0, 2, 1, 3)

    def _forward(self, inputs, mask, training, layout, use_causal_mask, return_scores):
        q, v, k, keep, attention, layout = self._arrays(inputs, mask, layout)
        dtype = q.dtype
        b, t, s = q.shape[0], q.shape[1], v.shape[1]
        invariant = get_batch_invariant()
        qp = self._project(q, "query", invariant)
        kp = self._project(v if k is None else k, "key", invariant)
        vp = self._project(v, "value", invariant)
        scale = 1.0 / math.sqrt(float(self.key_dim))
        # Keras 3 casts the Python scale through a float32 tensor (ops.cast), so float64 uses its float32 rounding;
        # tf_keras multiplies by the Python float
        scale = dtype.type(scale if self.keras2_semantics else np.float32(scale))
        qs = qp * scale
        scores = qs @ np.swapaxes(kp, -1, -2)  # (B, heads, T, S)
        if use_causal_mask:
            causal = np.tril(np.ones((t, s), bool))[None]
            keep = causal if keep is None else keep & causal
        if self.sliding_window is not None:  # Keras's symmetric band |i - j| < sliding_window
            band = (np.abs(np.arange(t)[:, None] - np.arange(s)[None, :]) < self.sliding_window)[None]
            keep = band if keep is None else keep & band
        if keep is not None:
            keep = keep[:, None]  # (B or 1, 1, T, S)
        if attention is not None:
            attention = attention if attention.ndim == 4 else attention[:, None]
            keep = attention if keep is None else keep & attention
        # Keras's two computations: the Softmax layer (scores returned or dropout) zeroes masked probabilities
        softmax_path = (return_scores or self.dropout > 0) and not self.keras2_semantics
        if keep is not None:
            negative = dtype.type(_SOFTMAX_NEGATIVE if softmax_path else _FUSED_NEGATIVE)
            scores = np.where(keep, scores, negative)
        with np.errstate(over="ignore"):
            e = np.exp(scores - scores.max(axis=-1, keepdims=True))
        probs = e / e.sum(axis=-1, keepdims=True)
        zeroed = keep is not None and softmax_path
        if zeroed:
            probs_out = np.where(keep, probs, dtype.type(0))
        else:
            probs_out = probs
        drop = None
        if training and self.dropout > 0:
            drop = ((self._rng.random(probs_out.shape) >= self.dropout) / (1.0 - self.dropout)).astype(dtype)
        used = probs_out if drop is None else probs_out * drop
        ctx = used @ vp  # (B, heads, T, value_dim)
        ctx2 = ctx.transpose(0, 2, 1, 3).reshape(b * t, self.num_heads * self.value_dim)
        kernel = self._params["attention_output/kernel"].astype(dtype, copy=False)
        out_dims = kernel.shape[2:]
        k2 = kernel.reshape(self.num_heads * self.value_dim, -1)
        out = matmul_rows(ctx2, k2) if invariant else ctx2 @ k2
        if self.use_bias:
            out += self._params["attention_output/bias"].astype(dtype, copy=False).reshape(-1)
        out = out.reshape((b, t) + tuple(out_dims))
        cache = (q, v, k, layout, qs, kp, vp, probs, keep, zeroed, drop, used, ctx2, scale)
        return (out, probs_out), cache

    def backward(self, dy, cache, need_dx: bool = True):
        q, v, k, layout, qs, kp, vp, probs, keep, zeroed, drop, used, ctx2, scale = cache
        d_scores_out = None
        if isinstance(dy, (list, tuple)):  # [d output, d attention scores (or None)]
            d_scores_out = dy[1] if len(dy) > 1 else None
            dy = dy[0]
        dtype = q.dtype
        if dy is None:
            dy = np.zeros((q.shape[0], q.shape[1]) + self._params["attention_output/kernel"].shape[2:], dtype)
        b, t = q.shape[0], q.shape[1]
        n, vd = self.num_heads, self.value_dim
        d_out = np.asarray(dy, dtype).reshape(b * t, -1)
        kernel_o = self._params["attention_output/kernel"].astype(dtype, copy=False)
        grads = {"attention_output/kernel": (ctx2.T @ d_out).reshape(kernel_o.shape)}
        if self.use_bias:
            grads["attention_output/bias"] = d_out.sum(axis=0).reshape(kernel_o.shape[2:])
        d_ctx = (d_out @ kernel_o.reshape(n * vd, -1).T).reshape(b, t, n, vd).transpose(0, 2, 1, 3)
        d_vp = np.swapaxes(used, -1, -2) @ d_ctx
        d_used = d_ctx @ np.swapaxes(vp, -1, -2)
        d_probs = d_used if drop is None else d_used * drop
        if d_scores_out is not None:  # the returned scores are the probabilities before dropout
            d_probs = d_probs + np.asarray(d_scores_out, dtype)
        if zeroed:
            d_probs = np.where(keep, d_probs, dtype.type(0))
        d_scores = probs * (d_probs - (d_probs * probs).sum(axis=-1, keepdims=True))
        if keep is not None and not self.keras2_semantics:
            # (tf_keras adds -1e9 to masked scores rather than replacing them: their gradient passes, which
            # matters only in a fully masked row, whose probabilities are then uniform, not ~0)
            d_scores = np.where(keep, d_scores, dtype.type(0))
        d_qp = (d_scores @ kp) * scale
        d_kp = np.swapaxes(d_scores, -1, -2) @ qs
        dxs = {}
        for name, x, d_p in (("query", q, d_qp), ("key", v if k is None else k, d_kp), ("value", v, d_vp)):
            kernel = self._params[f"{name}/kernel"].astype(dtype, copy=False)
            d, heads, w = kernel.shape
            d2 = self._fold_heads(name, d_p).transpose(0, 2, 1, 3).reshape(-1, heads * w)
            grads[f"{name}/kernel"] = (x.reshape(-1, d).T @ d2).reshape(kernel.shape)
            if self.use_bias:
                grads[f"{name}/bias"] = d2.sum(axis=0).reshape(heads, w)
            if need_dx:
                dxs[name] = (d2 @ kernel.reshape(d, heads * w).T).reshape(x.shape)
        grads = [grads[w].astype(self.dtype, copy=False) for w in self.weight_paths] if self.trainable else []
        if not need_dx:
            return None, grads
        if k is None:
            dxs["value"] = dxs["value"] + dxs.pop("key")
        return [dxs.get(role) for role in layout], grads

    def get_config(self) -> dict:
        config = {**super().get_config(), "num_heads": self.num_heads, "key_dim": self.key_dim,
                "value_dim": self.value_dim, "dropout": self.dropout, "use_bias": self.use_bias,
                "output_shape": None if self._output_dims is None else list(self._output_dims),
                "attention_axes": None if self.attention_axes is None else list(self.attention_axes),
                "kernel_initializer": self.kernel_initializer, "bias_initializer": self.bias_initializer,
                "seed": self.seed, "use_gate": False}
        if self.sliding_window is not None:  # written only when set: Keras before 3.15 has no such option
            config["sliding_window"] = self.sliding_window
        return config
