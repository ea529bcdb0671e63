"""A Functional config's inbound nodes, in Keras 3's (``{"args": [...], "kwargs": {...}}``) and Keras 2's
(``[[name, node, tensor, kwargs], ...]``) formats: the tensors a layer call takes (its inputs, initial
states, explicit masks), its call options (Attention's flags, MultiHeadAttention's keyword roles, a GetItem
op's index), and the references of Keras op layers. :mod:`fastgru.io.keras_functional` builds the graph.
"""

from __future__ import annotations

from ..errors import ModelFileError, UnsupportedKerasFeature
from ..tensor_arguments import TENSORS_KEY, positional_names
from .config_checks import _is_int, _short
from .keras_graph import GRAPH_CLASSES, key_from_config


def holds_nested_model(model_config) -> bool:
    """True for a Functional or Sequential config with a model among its layers (an encoder built as a
    Sequential or a Functional model, then called or added): built as a graph, the nested model stays one
    (``get_layer("encoder")`` returns it, and ``model.layers[k]`` is the k-th as in Keras) rather than its
    layers being spliced into a chain."""
    if not isinstance(model_config, dict) or model_config.get("class_name") not in (*GRAPH_CLASSES, "Sequential"):
        return False
    config = model_config.get("config")
    entries = config.get("layers") if isinstance(config, dict) else None
    return isinstance(entries, list) and any(
        isinstance(e, dict) and e.get("class_name") in (*GRAPH_CLASSES, "Sequential") for e in entries)


def _ref(obj, path, where: str):
    """(layer name, node index, tensor index) of a Keras 3 ``__keras_tensor__`` or a Keras 2 ``[name, n, t, {}]``."""
    if isinstance(obj, dict) and obj.get("class_name") in _CONSTANTS:
        raise UnsupportedKerasFeature(
            f"{where}: a constant array is given where fastgru takes a tensor of the graph (an initial state, a "
            "mask, an attention mask); give it as a model input, or use use_causal_mask=True for a causal mask")
    if isinstance(obj, dict) and obj.get("class_name") == "__keras_tensor__":
        history = obj.get("config", {}).get("keras_history") if isinstance(obj.get("config"), dict) else None
        obj = history
    if (isinstance(obj, list) and len(obj) >= 3 and isinstance(obj[0], str) and _is_int(obj[1])
            and _is_int(obj[2])):
        return obj[0], int(obj[1]), int(obj[2])
    raise ModelFileError(path, f"{where}: expected a tensor reference [layer, node, tensor], found {_short(obj)}")


#: how Keras 3 writes a constant array in a node's arguments (a NumPy array, a tensor computed from constants)
_CONSTANTS = ("__numpy__", "__tensor__")


def _is_tensor(obj) -> bool:
    return isinstance(obj, dict) and obj.get("class_name") == "__keras_tensor__"


def _is_keras2_ref(obj) -> bool:
    """A Keras 2 node's tensor reference ``[layer name, node index, tensor index(, kwargs)]``."""
    return (isinstance(obj, list) and len(obj) in (3, 4) and isinstance(obj[0], str) and _is_int(obj[1])
            and _is_int(obj[2]))


def _parse_node(node, layer_name: str, recurrent: bool, path, roles=None):
    """(args: list of refs, list_args, states: list of refs, mask refs, call options) of one inbound node
    (``roles``: the tensor arguments of a layer called with keywords, MultiHeadAttention's)."""
    where = f"layer {layer_name!r}"
    if roles is not None:
        return _parse_keyword_node(node, where, path, roles)
    return _parse_plain_node(node, where, recurrent, path)


#: a keyword-called layer's (MultiHeadAttention's) call arguments that hold masks, and the plain options kept
_MASK_ARGUMENTS = {"value_mask": "value", "key_mask": "key"}
_CALL_OPTIONS = ("use_causal_mask", "return_attention_scores")
#: a node's options: the values a call was given by position after its input (a custom layer's)
POSITIONAL_KEY = "__positional__"


def call_options(layer, name: str, options: dict) -> list:
    """The values a node gives ``layer``'s call by position (taken out of ``options``); an option the layer does not
    declare (``_call_options``: a custom layer's call arguments, MultiHeadAttention's flags) refused by name."""
    positional = options.pop(POSITIONAL_KEY, [])
    declared = getattr(layer, "_call_options", ())
    tensors = options.get(TENSORS_KEY)
    if tensors:  # (the parameters its other tensors go to: by position, as Keras binds them, or by name)
        if not getattr(layer, "_fg_user_layer", False):
            raise UnsupportedKerasFeature(f"layer {name!r}: called with several tensors ({type(layer).__name__} "
                                          "takes one input, or a list)")
        by_position = positional_names(type(layer)._fg_own_call, sum(t.startswith("#") for t in tensors))
        options[TENSORS_KEY] = tuple(by_position[int(t[1:]) - 1] if t.startswith("#") else t for t in tensors)
    unknown = sorted(set(options) - set(declared)) + (["given by position"] if positional and not declared else [])
    if unknown:
        raise UnsupportedKerasFeature(f"layer {name!r}: call option(s) {', '.join(unknown)} not supported by "
                                      f"{type(layer).__name__}")
    return positional


def _parse_keyword_node(node, where, path, roles):
    """A node of a layer called as ``layer(query, value, key=..., attention_mask=..., use_causal_mask=...)``
    (Keras 3: positional args and kwargs; Keras 2: ``[[query, n, t, {"value": [...], ...}]]``):
    (refs in ``layout`` order, True, [], mask refs, {"layout": ..., options})."""
    if isinstance(node, dict) and "args" in node:  # Keras 3 (the tensors may all be keywords: query=, value=)
        positional = node.get("args")
        if not isinstance(positional, list):
            raise ModelFileError(path, f"{where}: a node without args: {_short(node)}")
        kwargs = node.get("kwargs") or {}
    elif isinstance(node, list) and node and isinstance(node[0], list):  # Keras 2
        positional = [node[0]]
        kwargs = node[0][3] if len(node[0]) > 3 and isinstance(node[0][3], dict) else {}
        if len(node) > 1:
            positional = list(node)
    else:
        raise ModelFileError(path, f"{where}: malformed inbound node {_short(node)}")
    if not isinstance(kwargs, dict):
        raise ModelFileError(path, f"{where}: node kwargs are not an object: {_short(kwargs)}")
    if len(positional) > len(roles) - 1:
        raise ModelFileError(path, f"{where}: called with {len(positional)} positional tensors")
    named = {role: _ref(a, path, f"{where} {role}") for role, a in zip(roles, positional)}
    masks, options = {}, {}
    for key, value in kwargs.items():
        if key in roles:
            if value is not None:
                if key in named:
                    raise ModelFileError(path, f"{where}: {key} given twice")
                named[key] = _ref(value, path, f"{where} {key}")
        elif key in _MASK_ARGUMENTS:
            if value is not None:
                masks[_MASK_ARGUMENTS[key]] = _ref(value, path, f"{where} {key}")
        elif key in _CALL_OPTIONS:
            if not isinstance(value, bool):
                raise ModelFileError(path, f"{where}: {key} should be true or false, found {_short(value)}")
            if value:
                options[key] = True
        elif key in ("query_mask", "training"):
            continue  # Keras 3 ignores an explicit query_mask (it reads the query's own mask)
        elif value is not None:
            raise UnsupportedKerasFeature(f"{where}: call argument {key}={_short(value)} is not supported")
    for role in roles[:2]:
        if role not in named:
            raise ModelFileError(path, f"{where}: the node gives no {role} tensor: {_short(node)}")
    layout = [r for r in roles if r in named]
    if layout != list(roles[:2]):
        options["layout"] = layout
    mask_refs = [masks.get(r) for r in layout] if masks else []
    return [named[r] for r in layout], True, [], mask_refs, options


def _parse_getitem_node(node, where: str, path):
    """A Keras 3 GetItem op's node: ``{"args": [tensor, index], "kwargs": {}}`` -> ([tensor ref], False, [],
    [], {"key": index})."""
    if not (isinstance(node, dict) and isinstance(node.get("args"), list) and len(node["args"]) == 2):
        raise ModelFileError(path, f"{where}: a GetItem node is [tensor, index], found {_short(node)}")
    try:
        key = key_from_config(node["args"][1], where)
    except ValueError as exc:
        raise ModelFileError(path, str(exc)) from None
    return [_ref(node["args"][0], path, where)], False, [], [], {"key": key}


def _parse_op_node(node, where: str, path, tensor_key: str):
    """A Keras 3 op's node: ``{"args": [...], "kwargs": {...}}`` with tensors anywhere in them -> ([refs in
    order], True, [], [], {"template": the node with the k-th tensor replaced by ``{tensor_key: k}``})."""
    if not (isinstance(node, dict) and isinstance(node.get("args"), list)
            and isinstance(node.get("kwargs", {}), dict)):
        raise ModelFileError(path, f"{where}: malformed op node {_short(node)}")
    refs = []

    def strip(obj, depth=0):
        if depth > 8:
            raise ModelFileError(path, f"{where}: the op's arguments are nested too deeply")
        if _is_tensor(obj):
            refs.append(_ref(obj, path, where))
            return {tensor_key: len(refs) - 1}
        if isinstance(obj, list):
            return [strip(v, depth + 1) for v in obj]
        if isinstance(obj, dict):
            return {k: strip(v, depth + 1) for k, v in obj.items()}
        return obj

    template = {"args": strip(node["args"]), "kwargs": strip(node.get("kwargs", {}))}
    return refs, True, [], [], {"template": template}


#: a node keyword only fastgru writes (``io.functional_save``, for pickling): the recurrent layer called
#: with initial_state receives its input's mask, as tf_keras passed it (``graph.Node.mask_from_inputs``)
INPUT_MASK_KEY = "fastgru_mask_from_inputs"
#: a Keras 3 node's ``"mask": null``: the call had no mask when the graph was built, so at run time Keras gives it the
#: masks its input tensors carry (``graph.Node.mask_at_run_time``; they differ after a MultiHeadAttention deletes one)
RUNTIME_MASK_KEY = "fastgru_mask_at_run_time"
#: a layer-config key only fastgru writes (get_config, pickling; stripped from a saved .keras): the layer keeps
#: tf_keras's semantics (``use_keras2_semantics``: merges' masks, MultiHeadAttention's, TimeDistributed's)
KERAS2_KEY = "fastgru_keras2_semantics"


#: the name of a layer's first call argument, when a Keras 3 node gives it as a keyword (``layer(inputs=[q, v])``,
#: a recurrent layer's ``sequences=``)
_FIRST_ARGUMENTS = ("inputs", "sequences")


def _parse_plain_node(node, where: str, recurrent: bool, path):
    if isinstance(node, dict) and "args" in node:  # Keras 3
        args = node.get("args")
        kwargs = node.get("kwargs") or {}
        if isinstance(args, list) and not args and isinstance(kwargs, dict):
            given = [k for k in _FIRST_ARGUMENTS if kwargs.get(k) is not None]
            if len(given) == 1:
                kwargs = dict(kwargs)
                args = [kwargs.pop(given[0])]
                node = {"args": args, "kwargs": kwargs}
        if not isinstance(args, list) or not args:
            raise ModelFileError(path, f"{where}: a node without args: {_short(node)}")
        first = args[0]
        if isinstance(first, list):
            refs, list_args = [_ref(t, path, where) for t in first], True
        else:
            refs, list_args = [_ref(first, path, where)], False
        kwargs = node.get("kwargs") or {}
        if not isinstance(kwargs, dict):
            raise ModelFileError(path, f"{where}: node kwargs are not an object: {_short(kwargs)}")
        states, masks, options = [], [], {}
        tensors = [f"#{i}" for i, a in enumerate(args[1:], 1) if _is_tensor(a)]  # (attention(query, values))
        tensors += [k for k, v in kwargs.items() if _is_tensor(v) and k not in ("mask", "initial_state")]
        if tensors:  # (a custom layer's call given several tensors: a list input, the names kept; others refuse)
            if list_args or not all(map(_is_tensor, args[1:])):
                raise UnsupportedKerasFeature(f"{where}: called on a list and more tensors, or on tensors and values "
                                              "by position")
            refs += [_ref(args[int(t[1:])] if t.startswith("#") else kwargs[t], path, where) for t in tensors]
            list_args, options[TENSORS_KEY] = True, tensors
        elif args[1:]:  # (a custom layer's options given by position: layer(x, 0.25))
            options[POSITIONAL_KEY] = list(args[1:])
        for key, value in kwargs.items():
            if key in _CALL_OPTIONS:  # (kept for the layers that declare them; refused by the others)
                if not isinstance(value, bool):
                    raise ModelFileError(path, f"{where}: {key} should be true or false, found {_short(value)}")
                if value:
                    options[key] = True
            elif key == "initial_state" and value is not None:
                values = value if isinstance(value, list) else [value]
                states = [_ref(v, path, f"{where} initial_state") for v in values]
            elif key == "mask" and value is not None:
                values = value if isinstance(value, list) else [value]
                masks = [None if v is None else _ref(v, path, f"{where} mask") for v in values]
            elif key == "mask":
                options[RUNTIME_MASK_KEY] = True
            elif key == INPUT_MASK_KEY and value is True and recurrent:  # (fastgru's own configs only)
                options[INPUT_MASK_KEY] = True
            elif key in options.get(TENSORS_KEY, ()):
                continue
            elif _is_tensor(value) or (isinstance(value, list) and any(_is_tensor(v) for v in value)):
                raise UnsupportedKerasFeature(f"{where}: a tensor passed as {key}= is not supported")
            elif value is not None and key not in ("training", "mask", "initial_state", INPUT_MASK_KEY):
                options[key] = value  # (an option of the call: a custom layer's temperature=0.25; others refuse it)
        return refs, list_args, states, masks, options
    if isinstance(node, list):  # Keras 2: [[name, node, tensor, kwargs], ...]
        refs = [_ref(t, path, where) for t in node]
        if not refs:
            raise ModelFileError(path, f"{where}: an empty inbound node")
        kwargs = node[0][3] if len(node[0]) > 3 and isinstance(node[0][3], dict) else {}
        states, masks = [], []
        if isinstance(kwargs.get("initial_state"), list):
            states = [_ref(v, path, f"{where} initial_state") for v in kwargs["initial_state"]]
        mask = kwargs.get("mask")
        if mask is not None:  # (a layer called with mask=: one reference, or a list of them, None for none)
            masks = ([_ref(mask, path, f"{where} mask")] if _is_keras2_ref(mask) else
                     [None if v is None else _ref(v, path, f"{where} mask") for v in mask] if isinstance(mask, list)
                     else [_ref(mask, path, f"{where} mask")])
        options = {}
        for key in _CALL_OPTIONS:
            value = kwargs.get(key)
            if value is not None and not isinstance(value, bool):
                raise ModelFileError(path, f"{where}: {key} should be true or false, found {_short(value)}")
            if value:
                options[key] = True
        for key, value in kwargs.items():
            if key not in ("initial_state", "mask") and (_is_keras2_ref(value) or (
                    isinstance(value, list) and any(_is_keras2_ref(v) for v in value))):
                raise UnsupportedKerasFeature(f"{where}: a tensor passed as {key}= is not supported")
        if recurrent and len(refs) > 1:
            return refs[:1], False, refs[1:] + states, masks, options
        return refs, len(refs) > 1, states, masks, options
    raise ModelFileError(path, f"{where}: malformed inbound node {_short(node)}")


def _io_refs(value, path, what: str):
    """(refs, structure) of ``input_layers`` / ``output_layers``: one ref, a list of refs or a dict."""
    if isinstance(value, dict):
        keys = list(value)
        return [_ref(value[k], path, what) for k in keys], keys
    if isinstance(value, list) and value and isinstance(value[0], str):
        return [_ref(value, path, what)], None
    if isinstance(value, list) and value:
        return [_ref(v, path, what) for v in value], "list"
    raise ModelFileError(path, f"the Functional config's {what} is missing or malformed: {_short(value)}")


def _op_refs(entry, path, name) -> list:
    refs = []

    def walk(obj):
        if _is_tensor(obj):
            refs.append(_ref(obj, path, f"op layer {name!r}"))
        elif isinstance(obj, dict):
            for v in obj.values():
                walk(v)
        elif isinstance(obj, list):
            if len(obj) >= 3 and isinstance(obj[0], str) and _is_int(obj[1]) and _is_int(obj[2]):
                refs.append(_ref(obj, path, f"op layer {name!r}"))
                return
            for v in obj:
                walk(v)

    walk(entry.get("inbound_nodes", []))
    return refs
