"""Dot-product and additive attention, Keras 3's ``Attention`` and ``AdditiveAttention``.

Called on ``[query, value]`` or ``[query, value, key]`` (key defaults to value): query (B, Tq, dim),
value (B, Tv, dim), key (B, Tv, dim). Scores (B, Tq, Tv), masked where the value mask is False (and
above the diagonal with ``use_causal_mask``) by subtracting 1e9 as Keras does, a softmax over Tv, then
the weighted sum of the values; outputs at masked query steps are zero, and the query's mask is passed
on. Every step is a batched NumPy product or one elementwise pass (no Python loop over the batch or
time). ``dropout`` acts on the attention weights in training with fastgru's seeded generator (Keras's
statistics, not TensorFlow's numbers).
"""

from __future__ import annotations

import numpy as np

from ..random import make_rng
from .base import Layer, call_on_list_carrying, compute_dtype, record_symbolic_call
from .registry import NONE, Boolean, Integer, KerasContract, Real, StrOptions, register_layer, validate_params

_LARGE = 1.0e9  # what Keras subtracts from masked scores


def _swap(a: np.ndarray) -> np.ndarray:
    return np.swapaxes(a, -1, -2)


class _Attention(Layer):
    """What the two attention layers share: inputs, masks, the softmax and its gradient."""

    accepts_mask_argument = True  # (its Keras call takes mask=: graph.symbolic_call)

    supports_masking = True
    #: Keras records no ``mask=`` in its nodes (it is called on a list): it reads the masks its tensors carry
    #: when it runs, after a MultiHeadAttention on the same tensor none (``plan_walk._reads_runtime``)
    reads_runtime_masks = True
    _takes_list = True  # called on a list of tensors (fastgru.functional)
    #: call options a Functional node keeps (fastgru.graph.symbolic_call) and passes to each call
    _call_options = ("return_attention_scores", "use_causal_mask")
    #: called on [query, value, key], it takes mask=[query_mask, value_mask] (the key shares the value's), as Keras
    _masks_may_omit_key = True
    #: how tests/test_layer_contract.py builds one (query and value of one shape)
    contract_example = {"inputs": [(5, 4), (6, 4)]}

    def _options(self, **params):
        self.__dict__.update(validate_params(f"{type(self).__name__} {self.name!r}", self.parameter_constraints,
                                             params))
        self._rng = make_rng(self.seed)

    def _check_shapes(self, shapes) -> None:
        kind = f"{type(self).__name__} {self.name!r}"
        if not isinstance(shapes, (list, tuple)) or len(shapes) not in (2, 3) or \
                not all(isinstance(s, (list, tuple)) for s in shapes):
            raise ValueError(f"{kind} is called on [query, value] or [query, value, key], received {shapes!r}")
        q, v = shapes[0], shapes[1]
        k = shapes[2] if len(shapes) == 3 else v
        if len(q) != 3 or len(v) != 3 or len(k) != 3:
            raise ValueError(f"{kind} expects inputs of rank 3 (batch, steps, dim), received shapes {list(shapes)}")
        if q[-1] != k[-1] and None not in (q[-1], k[-1]):
            raise ValueError(f"{kind}: query and key must have the same last dimension, received {q} and {k}")
        if v[1] != k[1] and None not in (v[1], k[1]):
            raise ValueError(f"{kind}: value and key must have the same number of steps, received {v} and {k}")

    def __call__(self, inputs, mask=None, training: bool = False, **kwargs):
        if not isinstance(inputs, (list, tuple)) or not all(isinstance(a, np.ndarray) for a in inputs):
            if isinstance(inputs, (list, tuple)) and any(getattr(a, "_fg_symbolic", False) for a in inputs):
                return record_symbolic_call(self, inputs, mask=mask, training=training, **kwargs)
        if not isinstance(inputs, (list, tuple)):
            self._arrays(inputs)  # raises: [query, value] expected
        return call_on_list_carrying(self, inputs, [np.asarray(a) for a in inputs], mask=mask, training=training,
                                     **kwargs)

    def build(self, input_shape) -> None:
        self._check_shapes(input_shape)
        self._build_weights(int(input_shape[0][-1]))
        Layer.build(self, [tuple(s) for s in input_shape])

    def _build_weights(self, dim: int) -> None:
        pass

    def compute_output_shape(self, input_shape, return_attention_scores: bool = False, use_causal_mask: bool = False):
        out = tuple(input_shape[0][:-1]) + (input_shape[1][-1],)
        if return_attention_scores:  # and the scores (batch, Tq, Tv)
            return [out, (input_shape[0][0], input_shape[0][1], input_shape[1][1])]
        return out

    def compute_mask(self, x, mask=None):
        if mask is None or not isinstance(mask, (list, tuple)) or mask[0] is None:
            return None
        return mask[0]

    def _arrays(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) not in (2, 3):
            raise ValueError(f"{type(self).__name__} {self.name!r} is called on [query, value] or [query, value, key], "
                             f"received {type(inputs).__name__}")
        arrays = [np.asarray(a) for a in inputs]
        for a in arrays:
            if a.dtype.kind not in "fiub":
                raise TypeError(f"{type(self).__name__} {self.name!r} expects numeric arrays, received dtype {a.dtype}")
        self._check_shapes([a.shape for a in arrays])
        dtype = np.result_type(*[compute_dtype(a, self) for a in arrays])
        q, v = arrays[0].astype(dtype, copy=False), arrays[1].astype(dtype, copy=False)
        k = arrays[2].astype(dtype, copy=False) if len(arrays) == 3 else v
        return q, v, k, len(arrays) == 3

    @staticmethod
    def _masks(mask, q, v):
        if mask is None:
            return None, None
        if not isinstance(mask, (list, tuple)):
            raise ValueError("an attention layer's mask is a list [query_mask, value_mask(, key_mask)]")
        q_mask = None if mask[0] is None else np.asarray(mask[0]).astype(bool)
        v_mask = None if len(mask) < 2 or mask[1] is None else np.asarray(mask[1]).astype(bool)
        if q_mask is not None and q_mask.shape != q.shape[:2]:
            raise ValueError(f"the query mask must have shape {q.shape[:2]}, received {q_mask.shape}")
        if v_mask is not None and v_mask.shape != v.shape[:2]:
            raise ValueError(f"the value mask must have shape {v.shape[:2]}, received {v_mask.shape}")
        return q_mask, v_mask

    def call(self, inputs, mask=None, training: bool = False, return_attention_scores: bool = False,
             use_causal_mask: bool = False):
        (out, weights), _ = self._forward(inputs, mask, training, use_causal_mask)
        return [out, weights] if return_attention_scores else out

    def forward(self, inputs, mask=None, training: bool = True, return_attention_scores: bool = False,
                use_causal_mask: bool = False):
        """(output, cache), or ([output, scores], cache) with ``return_attention_scores``: the scores are
        the attention weights after dropout (Keras returns those), (batch, Tq, Tv), without a mask."""
        (out, weights), cache = self._forward(inputs, mask, training, use_causal_mask)
        return ([out, weights] if return_attention_scores else out), cache

    def _forward(self, inputs, mask, training, use_causal_mask):
        use_causal_mask = use_causal_mask or self.causal  # tf_keras's constructor option causal=True
        q, v, k, has_key = self._arrays(inputs)
        q_mask, v_mask = self._masks(mask, q, v)
        scores, score_cache = self._scores(q, k)
        keep = None
        if v_mask is not None:
            keep = v_mask[:, None, :]
        if use_causal_mask:
            causal = np.tril(np.ones((scores.shape[-2], scores.shape[-1]), bool))[None]
            keep = causal if keep is None else keep & causal
        if keep is not None:
            scores = np.where(keep, scores, scores - scores.dtype.type(_LARGE))
        e = np.exp(scores - scores.max(axis=-1, keepdims=True))
        weights = e / e.sum(axis=-1, keepdims=True)
        drop = None
        if training and self.dropout > 0:
            drop = ((self._rng.random(weights.shape) >= self.dropout) / (1.0 - self.dropout)).astype(weights.dtype)
        used = weights if drop is None else weights * drop
        out = used @ v
        if q_mask is not None:
            out = np.where(q_mask[..., None], out, 0)
        return (out, used), (q, v, k, has_key, q_mask, weights, drop, score_cache)

    def backward(self, dy, cache, need_dx: bool = True):
        """``dy``: the output's gradient, or [output's, scores'] (either None for zeros) when the call
        returned the attention scores."""
        q, v, k, has_key, q_mask, weights, drop, score_cache = cache
        d_scores_out = None
        if isinstance(dy, (list, tuple)):
            dy, d_scores_out = dy[0], (dy[1] if len(dy) > 1 else None)
        used = weights if drop is None else weights * drop
        dy = np.zeros(used.shape[:2] + v.shape[2:], q.dtype) if dy is None else np.asarray(dy, q.dtype)
        if q_mask is not None:
            dy = np.where(q_mask[..., None], dy, 0)
        dv = _swap(used) @ dy
        d_used = dy @ _swap(v)
        if d_scores_out is not None:
            d_used = d_used + np.asarray(d_scores_out, q.dtype)
        d_weights = d_used if drop is None else d_used * drop
        d_scores = weights * (d_weights - (d_weights * weights).sum(axis=-1, keepdims=True))
        dq, dk, grads = self._scores_backward(d_scores, q, k, score_cache)
        grads = [g.astype(self.dtype) for g in grads] if self.trainable else []
        if has_key:
            return [dq, dv, dk], grads
        return [dq, dv + dk], grads


@register_layer
class Attention(_Attention):
    """Dot-product attention (Luong style): scores ``query @ key^T`` (times a trained ``scale`` when
    ``use_scale``), or with ``score_mode="concat"`` ``c * sum(tanh(scale * (q_i + k_j)))`` (a trained
    ``concat_score_weight`` c). Weights, in Keras's order: scale, concat_score_weight (each a scalar, when used)."""

    keras = KerasContract(names=("Attention",))
    parameter_constraints = {"use_scale": [Boolean()], "score_mode": [StrOptions(("dot", "concat"))],
                             "dropout": [Real(0.0, 1.0, open_high=True)], "seed": [NONE, Integer(0)],
                             "causal": [Boolean()]}
    weight_names = ("scale", "concat_score_weight")

    def __init__(self, use_scale: bool = False, score_mode: str = "dot", dropout: float = 0.0, seed=None,
                 causal: bool = False, **kwargs):
        super().__init__(**kwargs)
        self._options(use_scale=use_scale, score_mode=score_mode, dropout=dropout, seed=seed, causal=causal)

    def _build_weights(self, dim: int) -> None:
        if self.use_scale:
            self._add_weight("scale", (), "ones", self._rng)
        if self.score_mode == "concat":
            self._add_weight("concat_score_weight", (), "ones", self._rng)

    def _scores(self, q, k):
        scale = self._params["scale"].astype(q.dtype) if self.use_scale else None
        if self.score_mode == "dot":
            raw = q @ _swap(k)
            return (raw if scale is None else raw * scale), raw
        c = self._params["concat_score_weight"].astype(q.dtype)
        summed = q[:, :, None, :] + k[:, None, :, :]
        t = np.tanh(summed if scale is None else scale * summed)
        return c * t.sum(axis=-1), (summed, t)

    def _scores_backward(self, d_scores, q, k, score_cache):
        grads = []
        if self.score_mode == "dot":
            raw = score_cache
            scale = self._params["scale"].astype(q.dtype) if self.use_scale else q.dtype.type(1.0)
            ds = d_scores * scale
            if self.use_scale:
                grads.append(np.asarray((d_scores * raw).sum()))
            return ds @ k, _swap(ds) @ q, grads
        summed, t = score_cache
        c = self._params["concat_score_weight"].astype(q.dtype)
        scale = self._params["scale"].astype(q.dtype) if self.use_scale else q.dtype.type(1.0)
        d_inner = (c * d_scores)[..., None] * (1.0 - t * t)  # d/d(scale * summed)
        if self.use_scale:
            grads.append(np.asarray((d_inner * summed).sum()))
        grads.append(np.asarray((d_scores * t.sum(axis=-1)).sum()))
        d_summed = d_inner * scale
        return d_summed.sum(axis=2), d_summed.sum(axis=1), grads

    def get_config(self) -> dict:
        return {**super().get_config(), "use_scale": self.use_scale, "score_mode": self.score_mode,
                "dropout": self.dropout, "seed": self.seed, **({"causal": True} if self.causal else {})}


@register_layer
class AdditiveAttention(_Attention):
    """Additive attention (Bahdanau style): scores ``sum(scale * tanh(q_i + k_j))`` over dim, with a
    trained (dim,) ``scale`` when ``use_scale`` (Keras's default). Weights: scale."""

    keras = KerasContract(names=("AdditiveAttention",))
    parameter_constraints = {"use_scale": [Boolean()], "dropout": [Real(0.0, 1.0, open_high=True)],
                             "seed": [NONE, Integer(0)], "causal": [Boolean()]}
    weight_names = ("scale",)

    def __init__(self, use_scale: bool = True, dropout: float = 0.0, seed=None, causal: bool = False, **kwargs):
        super().__init__(**kwargs)
        self._options(use_scale=use_scale, dropout=dropout, seed=seed, causal=causal)

    def _build_weights(self, dim: int) -> None:
        if self.use_scale:
            self._add_weight("scale", (dim,), "glorot_uniform", self._rng)

    def _scores(self, q, k):
        t = np.tanh(q[:, :, None, :] + k[:, None, :, :])
        scale = self._params["scale"].astype(q.dtype) if self.use_scale else None
        return (t if scale is None else t * scale).sum(axis=-1), t

    def _scores_backward(self, d_scores, q, k, t):
        grads = []
        if self.use_scale:
            scale = self._params["scale"].astype(q.dtype)
            grads.append((d_scores[..., None] * t).sum(axis=(0, 1, 2)))
            d_t = d_scores[..., None] * scale
        else:
            d_t = np.broadcast_to(d_scores[..., None], t.shape)
        d_summed = d_t * (1.0 - t * t)
        return d_summed.sum(axis=2), d_summed.sum(axis=1), grads

    def get_config(self) -> dict:
        return {**super().get_config(), "use_scale": self.use_scale, "dropout": self.dropout, "seed": self.seed,
                **({"causal": True} if self.causal else {})}
