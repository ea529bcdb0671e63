"""``keras.ops.dot_product_attention`` as a graph op (``DotProductAttention``), computed as Keras's TensorFlow backend
computes it: ``query`` (B, T, N, H), ``key`` and ``value`` (B, S, K, H) with K dividing N (grouped heads repeated),
logits ``einsum("BTNH,BSNH->BNTS") * scale`` (``1/sqrt(H)`` by default, in float32), plus ``bias``, positions where
``mask`` (broadcast to (B, N, T, S)) is false or ``is_causal`` hides set to ``-0.7 * 3.38953e38``, a softmax over S,
then ``einsum("BNTS,BSNH->BTNH")`` with ``value``; and TensorFlow's gradients (none for the mask). Used by
:class:`fastgru.layers.keras_ops.KerasOp`; its operands are ``[query, key, value]``, then the bias and the mask where
given (:func:`attention_arguments`)."""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedKerasFeature

_NAMES = ("query", "key", "value", "bias", "mask", "scale")


def attention_arguments(args: list, kwargs: dict, owner: str) -> tuple[list, dict]:
    """A node's arguments (positional, then ``bias``/``mask``/``scale`` by keyword) as ``(operands, params)``: the
    operands query, key, value, then the bias and the mask where given; ``params`` the scale and which were given."""
    if not 3 <= len(args) <= len(_NAMES):
        raise ValueError(f"{owner}: expects query, key and value (then bias, mask, scale), found {len(args)} "
                         "arguments")
    given = {**dict(zip(_NAMES, args)), **kwargs}
    scale = given.get("scale")
    if scale is not None and (isinstance(scale, bool) or not isinstance(scale, (int, float))):
        raise UnsupportedKerasFeature(f"{owner}: scale must be a number or None, found {scale!r}")
    extra = [given[n] for n in ("bias", "mask") if given.get(n) is not None]
    params = {"scale": scale, "has_bias": given.get("bias") is not None, "has_mask": given.get("mask") is not None}
    return [given["query"], given["key"], given["value"], *extra], params


def _normalize(c, shapes, owner, is_tensor):
    if c.get("flash_attention"):
        raise UnsupportedKerasFeature(f"{owner}: flash_attention=True (Keras's TensorFlow backend refuses it too)")
    if c.get("attn_logits_soft_cap") is not None:
        raise UnsupportedKerasFeature(f"{owner}: attn_logits_soft_cap (Keras runs it with JAX on TPU only)")
    q, k, v = (tuple(s) for s in shapes[:3])
    if len(q) != 4 or len(k) != 4 or len(v) != 4:
        raise ValueError(f"{owner}: query, key and value must be of rank 4 (batch, steps, heads, size), found "
                         f"{q}, {k} and {v}")
    if k[1:3] != v[1:3] and None not in (k[1], v[1]):
        raise ValueError(f"{owner}: key {k} and value {v} must have the same steps and heads")
    if q[3] != k[3] or (q[2] is not None and k[2] is not None and q[2] % k[2]):
        raise ValueError(f"{owner}: query {q} and key {k} must have one head size, and the key's heads must divide "
                         "the query's")
    return {"scale": c.get("scale"), "is_causal": bool(c.get("is_causal", False)), "has_bias": c["has_bias"],
            "has_mask": c["has_mask"]}


def _shape(shapes, c):
    return tuple(shapes[0][:3]) + (shapes[2][3],)


def _grouped(a, heads: int):
    return a if a.shape[2] == heads else np.repeat(a, heads // a.shape[2], axis=2)


def _parts(xs, c):
    """(query, grouped key, grouped value, bias or None, keep mask or None, scale, probabilities)."""
    q, k, v = xs[:3]
    rest = iter(xs[3:])
    bias = next(rest) if c["has_bias"] else None
    mask = next(rest) if c["has_mask"] else None
    k, v = _grouped(k, q.shape[2]), _grouped(v, q.shape[2])
    dtype = np.result_type(q.dtype, np.float32)
    scale = dtype.type(np.float32(1.0) / np.sqrt(np.float32(k.shape[-1])) if c["scale"] is None else c["scale"])
    logits = np.einsum("btnh,bsnh->bnts", q, k) * scale
    if bias is not None:
        logits = logits + np.asarray(bias, dtype)
    keep = None if mask is None else np.broadcast_to(np.asarray(mask) != 0, logits.shape)
    if c["is_causal"]:
        causal = np.tril(np.ones(logits.shape[-2:], bool))
        keep = causal if keep is None else keep & causal
    if keep is not None:
        logits = np.where(keep, logits, dtype.type(-0.7 * 3.38953e38))
    top = logits.max(axis=-1, keepdims=True)
    e = np.exp(logits - top)
    probs = e / e.sum(axis=-1, keepdims=True)
    return q, k, v, bias, keep, scale, probs


def _values(xs, c):
    *_, v, _, _, _, probs = _parts(xs, c)
    return np.einsum("bnts,bsnh->btnh", probs, v)


def _gradients(xs, y, dy, c):
    q, k, v, bias, keep, scale, probs = _parts(xs, c)
    dprobs = np.einsum("btnh,bsnh->bnts", dy, v)
    dv = np.einsum("bnts,btnh->bsnh", probs, dy)
    dlogits = probs * (dprobs - (dprobs * probs).sum(axis=-1, keepdims=True))
    if keep is not None:
        dlogits = np.where(keep, dlogits, 0).astype(dlogits.dtype)
    dbias = None
    if bias is not None:
        dbias = dlogits
        extra = dbias.ndim - np.ndim(bias)
        dbias = dbias.sum(axis=tuple(range(extra))) if extra else dbias
        axes = tuple(i for i, n in enumerate(np.shape(bias)) if n == 1 and dbias.shape[i] != 1)
        dbias = dbias.sum(axis=axes, keepdims=True) if axes else dbias
    dlogits = dlogits * scale
    dq = np.einsum("bnts,bsnh->btnh", dlogits, k)
    dk = np.einsum("bnts,btnh->bsnh", dlogits, q)
    groups = q.shape[2] // xs[1].shape[2]
    if groups > 1:  # (the repeated heads' gradients summed back onto their key and value head)
        dk = dk.reshape(dk.shape[:2] + (xs[1].shape[2], groups) + dk.shape[3:]).sum(axis=3)
        dv = dv.reshape(dv.shape[:2] + (xs[2].shape[2], groups) + dv.shape[3:]).sum(axis=3)
    return [dq, dk, dv] + ([dbias] if c["has_bias"] else []) + ([None] if c["has_mask"] else [])


ATTENTION_OPS = {"DotProductAttention": (_normalize, _shape, _values, _gradients)}
