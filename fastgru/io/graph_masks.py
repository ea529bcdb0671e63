"""Masks in a Keras Functional config (for ``io.keras_functional``): the op layers Keras 3 records to compute
a mask passed as ``mask=`` (set aside: fastgru propagates those masks itself), whether a config makes masks
at all, and whether a graph's tensor can carry one (tf_keras's masked recurrent calls with initial_state)."""

from __future__ import annotations

from ..errors import ModelFileError, UnsupportedKerasFeature
from ..layers import registry
from .keras_graph import GRAPH_CLASSES, _is_op
from .keras_nodes import _io_refs, _op_refs, _parse_getitem_node, _parse_node, _parse_op_node


def may_carry_mask(tensor, memo: dict | None = None) -> bool:
    """Whether a symbolic tensor of the graph can carry a propagated mask: made by Masking or
    Embedding(mask_zero), or passed on from one by layers that propagate masks (a recurrent layer's
    sequence output, not its states). Conservative (True) for nested models given a masked input."""
    memo = {} if memo is None else memo
    key = id(tensor)
    if key not in memo:
        memo[key] = False  # (a cycle cannot make a mask)
        node, layer = tensor.node, tensor.node.layer
        cls = type(layer).__name__
        if node.is_input:
            found = False
        elif cls == "Masking" or (cls == "Embedding" and getattr(layer, "mask_zero", False)) or node.masks:
            found = True
        elif cls in ("GRU", "LSTM", "SimpleRNN", "Bidirectional"):
            n_seq = 2 if cls == "Bidirectional" and layer.merge_mode is None else 1
            found = bool(layer.return_sequences) and tensor.index < n_seq and may_carry_mask(node.args[0], memo)
        elif getattr(layer, "_fg_model", False) or cls == "Sequential" or getattr(layer, "supports_masking", False):
            found = any(may_carry_mask(t, memo) for t in node.args)
        else:
            found = False
        memo[key] = found
    return memo[key]


def makes_masks(obj, depth: int = 0) -> bool:
    """Whether a config (nested models included) has a Masking or an Embedding(mask_zero=True) layer."""
    if depth > 64:
        return True  # (absurdly deep: assume it does; the loader refuses such nesting anyway)
    if isinstance(obj, dict):
        cls, cfg = obj.get("class_name"), obj.get("config")
        if cls == "Masking" or (cls == "Embedding" and isinstance(cfg, dict) and cfg.get("mask_zero")):
            return True
        return any(makes_masks(v, depth + 1) for v in obj.values() if isinstance(v, (dict, list)))
    if isinstance(obj, list):
        return any(makes_masks(v, depth + 1) for v in obj if isinstance(v, (dict, list)))
    return False


def mask_only_ops(entries, names, config, path):
    """(parsed nodes of the layers and of the ops fastgru runs, names of the op layers that only compute masks
    passed as mask=: set aside where the layer's input carries the same mask propagated, computed otherwise).

    An op layer fastgru does not run (layers/keras_ops.py) is refused unless it only computes a mask."""
    parsed, uses, ops = {}, {}, {}
    op_class = registry.model_class("KerasOp")  # (layers/keras_ops.py: the Keras ops fastgru runs)
    supported_ops = op_class.supported_ops
    for entry, name in zip(entries, names):
        cls = entry["class_name"]
        if _is_op(entry) and cls == "GetItem":  # x[:, -1] and the like: run as a layer (layers/getitem.py)
            nodes = entry.get("inbound_nodes", [])
            if not isinstance(nodes, list):
                raise ModelFileError(path, f"layer {name!r}: inbound_nodes is not a list")
            parsed[name] = [_parse_getitem_node(n, f"op layer {name!r}", path) for n in nodes]
            for refs, *_ in parsed[name]:
                for r in refs:
                    uses.setdefault(r[0], []).append((name, "data"))
            continue
        if _is_op(entry):
            ops[name] = cls
            if cls in supported_ops:  # computed as a layer (layers/keras_ops.py) unless it only makes a mask
                nodes = entry.get("inbound_nodes", [])
                if not isinstance(nodes, list):
                    raise ModelFileError(path, f"layer {name!r}: inbound_nodes is not a list")
                parsed[name] = [_parse_op_node(n, f"op layer {name!r}", path, op_class.tensor_key) for n in nodes]
            for r in _op_refs(entry, path, name):
                uses.setdefault(r[0], []).append((name, "data"))
            continue
        nodes = entry.get("inbound_nodes", [])
        if not isinstance(nodes, list):
            raise ModelFileError(path, f"layer {name!r}: inbound_nodes is not a list")
        recurrent = cls in ("GRU", "LSTM", "SimpleRNN", "Bidirectional")
        registered = registry.lookup(cls)
        roles = getattr(registered, "call_roles", None) if registered is not None else None
        parsed[name] = [_parse_node(n, name, recurrent, path, roles) for n in nodes]
        for refs, _, states, masks, _ in parsed[name]:
            for r in refs + states:
                uses.setdefault(r[0], []).append((name, "data"))
            for r in masks:
                if r is not None:
                    uses.setdefault(r[0], []).append((name, "mask"))
    try:
        out_refs, _ = _io_refs(config.get("output_layers"), path, "output_layers")
    except ModelFileError:
        out_refs = []
    for r in out_refs:
        uses.setdefault(r[0], []).append(("<output>", "data"))
    mask_only: set = set()
    grew = True
    while grew:
        grew = False
        for name in ops:
            if name in mask_only:
                continue
            u = uses.get(name, [])
            if u and all(kind == "mask" or consumer in mask_only for consumer, kind in u):
                mask_only.add(name)
                grew = True
    odd = sorted(n for n in ops if n not in mask_only and ops[n] not in supported_ops)
    if odd:
        raise UnsupportedKerasFeature(
            f"the model computes with Keras op layer(s) {', '.join(f'{n!r} ({ops[n]})' for n in odd)}, which fastgru "
            f"does not run (it runs the ops {', '.join(sorted(supported_ops))}, and sets aside the op layers that "
            "compute a mask passed as mask=)")
    unsupported = sorted(n for n in mask_only if ops[n] not in supported_ops)
    if unsupported and not any(e["class_name"] in ("Masking", "Embedding") or e["class_name"] in GRAPH_CLASSES
                               or e["class_name"] == "Sequential" for e in entries):
        raise UnsupportedKerasFeature(
            f"the model passes a mask computed by op layer(s) {', '.join(unsupported)} as mask=: fastgru does not run "
            "those ops, and takes a mask it cannot compute only as the one Masking or Embedding(mask_zero=True) "
            "propagates")
    return parsed, mask_only


def computable_mask_ops(entries, names, parsed, mask_only) -> set:
    """The mask-only ops fastgru computes: ops it runs (``parsed``) whose inputs are layers or such ops; not those
    made with ones_like, which Keras 3 records where a merge layer combines its inputs' masks (Concatenate's mask of
    an unmasked input): that mask is the one fastgru propagates."""
    merged = {n for e, n in zip(entries, names) if e.get("class_name") in ("OnesLike", "ZerosLike")}
    computable = {n for n in mask_only if n in parsed and n not in merged}
    shrunk = True
    while shrunk:
        shrunk = False
        for n in sorted(computable):
            if any(r[0] in mask_only and r[0] not in computable for node in parsed[n] for r in node[0]):
                computable.discard(n)
                shrunk = True
    return computable
