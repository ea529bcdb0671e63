"""Keras 3's products as a Functional graph records them (``ops.matmul``, ``ops.einsum``, ``ops.dot``,
``ops.tensordot``): for each, ``normalize(config, operand shapes, owner, is_tensor)`` (checked against the
operands' ranks; a product that would sum over or move the batch axis is refused, since fastgru keeps every
sample's computation apart), the output shape, the values and the gradients. ``dot`` and ``tensordot`` of a
tensor and a constant are run as the einsum they are. Used by :class:`fastgru.layers.keras_ops.KerasOp`.
"""

from __future__ import annotations

import string

import numpy as np

from ..errors import UnsupportedKerasFeature
from .op_elementwise import broadcast_shape, unbroadcast


# ---------------------------------------------------------------------------------------------
# matmul and einsum
# ---------------------------------------------------------------------------------------------
def _matmul_normalize(c, shapes, owner, is_tensor=(True, True)):
    a, b = shapes
    if all(is_tensor):
        ok = len(a) >= 3 and len(a) == len(b)
    elif is_tensor[0]:  # a batch of rows or matrices times a constant matrix (or a stack of them, no batch axis)
        ok = len(a) >= 2 and (len(b) == 2 or 2 <= len(b) < len(a))
    else:  # a constant matrix times a batch of matrices (the batch axis stays first)
        ok = len(b) >= 3 and 2 <= len(a) < len(b)
    if not ok:
        raise UnsupportedKerasFeature(f"{owner}: fastgru multiplies batches of matrices of one rank (3 or more, "
                                      "the batch axis first), a batch of rows or matrices by a constant matrix, or "
                                      f"a constant matrix by a batch of matrices; found shapes {a} and {b}")
    if a[-1] is not None and b[-2] is not None and a[-1] != b[-2]:
        raise ValueError(f"{owner}: shapes {a} and {b} do not multiply ({a[-1]} != {b[-2]})")
    return {}


def _matmul_shape(shapes, c):
    a, b = shapes
    return broadcast_shape(a[:-2], b[:-2], "Matmul") + (a[-2], b[-1])


def _matmul_grad(xs, y, dy, c):
    a, b = xs
    da = np.matmul(dy, np.swapaxes(b, -1, -2))
    db = np.matmul(np.swapaxes(a, -1, -2), dy)
    return [unbroadcast(da, a.shape), unbroadcast(db, b.shape)]


def _einsum_normalize(c, shapes, owner, is_tensor=(True, True)):
    sub = c.get("subscripts")
    letters = set(string.ascii_letters)
    if not isinstance(sub, str) or "->" not in sub or sub.count("->") != 1:
        raise ValueError(f"{owner}: subscripts must be explicit ('ij,jk->ik'), found {sub!r}")
    ins, out = sub.replace(" ", "").split("->")
    terms = ins.split(",")
    if len(terms) != len(shapes) or len(terms) not in (1, 2) or not any(is_tensor):
        raise UnsupportedKerasFeature(f"{owner}: fastgru runs einsum on one or two operands, a tensor among them, "
                                      f"found {sub!r} on {len(shapes)} operand(s)")
    if "..." in sub:
        terms, out = _expand_ellipsis(terms, out, shapes, sub, owner)
    if any(set(t) - letters or len(set(t)) != len(t) for t in terms + [out]):
        raise ValueError(f"{owner}: subscripts {sub!r}: letters only, each at most once per operand")
    if any(len(t) != len(s) for t, s in zip(terms, shapes)):
        raise ValueError(f"{owner}: subscripts {sub!r} do not match the operands' ranks {[len(s) for s in shapes]}")
    if set(out) - set("".join(terms)):
        raise ValueError(f"{owner}: subscripts {sub!r}: an output letter comes from no operand")
    if not out or any((t[0] != out[0]) if tensor else (out[0] in t) for t, tensor in zip(terms, is_tensor)):
        raise UnsupportedKerasFeature(f"{owner}: subscripts {sub!r}: the batch axis must come first in each "
                                      "tensor and in the output, and in no constant operand")
    for t, other in ((terms[0], terms[-1]), (terms[-1], terms[0])) if len(terms) == 2 else ():
        if set(t) - set(out) - set(other):
            raise UnsupportedKerasFeature(f"{owner}: subscripts {sub!r} sum an axis of one operand alone (not "
                                          "supported)")
    sizes: dict = {}
    for t, s in zip(terms, shapes):
        for letter, d in zip(t, s):
            if d is not None and sizes.get(letter) not in (None, d):
                raise ValueError(f"{owner}: subscripts {sub!r}: axis {letter!r} has sizes {sizes[letter]} and {d}")
            sizes[letter] = d if d is not None else sizes.get(letter)
    return {"terms": tuple(terms), "out": out, "sizes": sizes}


def _expand_ellipsis(terms, out, shapes, sub, owner):
    """The subscripts with each ``...`` spelled as letters of their own: an operand's ellipsis stands for the
    axes its other letters leave, aligned from the right across operands (NumPy's rule); the output's for the
    longest of them."""
    free = [letter for letter in string.ascii_letters if letter not in sub]
    spans = []
    for t, s in zip(terms, shapes):
        n = len(s) - len(t.replace("...", ""))
        if t.count("...") > 1 or ("..." not in t and n) or n < 0:
            raise ValueError(f"{owner}: subscripts {sub!r} do not match the operands' ranks {[len(s) for s in shapes]}")
        spans.append(n if "..." in t else 0)
    longest = max(spans)
    if out.count("...") > 1 or (longest and "..." not in out) or longest > len(free):
        raise ValueError(f"{owner}: subscripts {sub!r}: the output must hold the ellipsis' axes once")
    named = free[:longest]
    terms = [t.replace("...", "".join(named[longest - n:])) for t, n in zip(terms, spans)]
    return terms, out.replace("...", "".join(named))


def _einsum_grad(xs, y, dy, c):
    if len(c["terms"]) == 1:  # a permutation and sums of one tensor: dy spread back over the summed axes
        (ta,), out = c["terms"], c["out"]
        kept = "".join(letter for letter in ta if letter in out)
        g = np.einsum(f"{out}->{kept}", dy)
        g = g.reshape(tuple(xs[0].shape[i] if letter in out else 1 for i, letter in enumerate(ta)))
        return [np.broadcast_to(g, xs[0].shape).astype(xs[0].dtype)]
    (ta, tb), out = c["terms"], c["out"]
    a, b = xs
    return [np.einsum(f"{out},{tb}->{ta}", dy, b, optimize=True).astype(a.dtype, copy=False),
            np.einsum(f"{out},{ta}->{tb}", dy, a, optimize=True).astype(b.dtype, copy=False)]


# ---------------------------------------------------------------------------------------------
# dot and tensordot: a tensor and a constant, as the einsum they are
# ---------------------------------------------------------------------------------------------
def _contraction(shapes, is_tensor, pairs, owner) -> dict:
    """The einsum (terms, output, sizes) of summing axis i of the first operand with axis j of the second for
    each (i, j) in ``pairs``, the kept axes in order (the first operand's, then the second's)."""
    if all(is_tensor):
        raise UnsupportedKerasFeature(f"{owner}: a product of two tensors over these axes pairs the samples of the "
                                      "batch with each other; fastgru runs it with one constant operand (use "
                                      "ops.matmul or ops.einsum for batches of matrices)")
    (ra, rb), letters = (len(s) for s in shapes), string.ascii_letters
    if ra + rb > len(letters):
        raise UnsupportedKerasFeature(f"{owner}: operands of {ra} and {rb} axes are too many")
    ta, tb = list(letters[:ra]), list(letters[ra:ra + rb])
    sizes: dict = {}
    for i, j in pairs:
        da, db = shapes[0][i], shapes[1][j]
        if da is not None and db is not None and da != db:
            raise ValueError(f"{owner}: axis {i} of {shapes[0]} and axis {j} of {shapes[1]} differ ({da} != {db})")
        tb[j] = ta[i]
        sizes[ta[i]] = da if da is not None else db
    out = [t for k, t in enumerate(ta) if k not in {i for i, _ in pairs}] + \
          [t for k, t in enumerate(tb) if k not in {j for _, j in pairs}]
    batch = (ta if is_tensor[0] else tb)[0]
    if not out or out[0] != batch:
        raise UnsupportedKerasFeature(f"{owner}: the product sums over or moves the batch axis (operand shapes "
                                      f"{shapes[0]} and {shapes[1]}); fastgru computes each sample on its own")
    for term, shape in ((ta, shapes[0]), (tb, shapes[1])):
        for t, d in zip(term, shape):
            sizes.setdefault(t, d)
    return {"terms": ("".join(ta), "".join(tb)), "out": "".join(out), "sizes": sizes}


def _dot_normalize(c, shapes, owner, is_tensor=(True, False)):
    a, b = shapes
    if not a or not b:
        raise UnsupportedKerasFeature(f"{owner}: a dot product with a number is a multiplication (use ops.multiply)")
    return _contraction(shapes, is_tensor, [(len(a) - 1, max(len(b) - 2, 0))], owner)


def _tensordot_normalize(c, shapes, owner, is_tensor=(True, False)):
    axes, (ra, rb) = c.get("axes", 2), (len(s) for s in shapes)
    if isinstance(axes, int) and not isinstance(axes, bool):
        if not 0 <= axes <= min(ra, rb):
            raise ValueError(f"{owner}: axes={axes} for operands of {ra} and {rb} axes")
        pairs = [(ra - axes + k, k) for k in range(axes)]
    elif isinstance(axes, (list, tuple)) and len(axes) == 2:
        first, second = ([v] if isinstance(v, int) else v for v in axes)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (*first, *second)) or \
                len(first) != len(second) or not all(-ra <= i < ra for i in first) or \
                not all(-rb <= j < rb for j in second):
            raise ValueError(f"{owner}: axes must be a count or two lists of axes of one length, found {axes!r}")
        pairs = [(i % ra, j % rb) for i, j in zip(first, second)]
    else:
        raise ValueError(f"{owner}: axes must be a count or two lists of axes, found {axes!r}")
    return _contraction(shapes, is_tensor, pairs, owner)


def _einsum_values(xs, c):
    return np.einsum(f"{','.join(c['terms'])}->{c['out']}", *xs, optimize=len(xs) > 1).astype(xs[0].dtype,
                                                                                              copy=False)


def _einsum_shape(shapes, c):
    return tuple(c["sizes"].get(letter) for letter in c["out"])


PRODUCTS = {
    "Matmul": (_matmul_normalize, _matmul_shape, lambda xs, c: np.matmul(xs[0], xs[1]), _matmul_grad),
    "Einsum": (_einsum_normalize, _einsum_shape, _einsum_values, _einsum_grad),
    "Dot": (_dot_normalize, _einsum_shape, _einsum_values, _einsum_grad),
    "Tensordot": (_tensordot_normalize, _einsum_shape, _einsum_values, _einsum_grad),
}
