"""The graph of a Keras model config: layer entries, the layers feeding each one (Keras 2 and Keras 3
node formats), and the chain order of a Functional model that is a plain chain (anything else is
refused with UnsupportedKerasFeature)."""

from __future__ import annotations

from ..errors import ModelFileError, UnsupportedKerasFeature
from ..layers import registry
from .config_checks import _is_int, _short


def _entry(entry, path, where: str) -> tuple[str, dict]:
    if not isinstance(entry, dict) or not isinstance(entry.get("class_name"), str):
        raise ModelFileError(path, f"{where}: expected a layer entry with 'class_name' and 'config', "
                                   f"found {_short(entry)}")
    config = entry.get("config", {})
    if not isinstance(config, (dict, list)) or (isinstance(config, list) and entry["class_name"] != "Sequential"):
        raise ModelFileError(path, f"{where}: the config of {entry['class_name']} is not an object: {_short(config)}")
    name, module, registered = entry["class_name"], entry.get("module"), entry.get("registered_name")
    custom = not (isinstance(module, str) and module.startswith("keras")) and registry.custom_layer(name) is not None
    if custom and registry.lookup(name) is not None:  # (a script's own class named as a built-in, given: it wins)
        name = ">" + name  # (registry.custom_layer reads the name after '>'; registry.lookup finds nothing)
    if custom and isinstance(registered, str) and ">" in registered and isinstance(config, dict):
        config = {**config, REGISTERED_KEY: registered}  # (kept on the layer: saved back under it)
    return name, config


#: a custom layer's config entry: the name its class is registered under in the file (``"package>Name"``)
REGISTERED_KEY = "__fastgru_registered_name__"


def from_script_config(cls: type, config: dict, what: str, path):
    """An object of a script's own class (``custom_objects``) built by its ``from_config`` from a file's config
    (an entry's, from ``_entry``), as Keras builds it; the file's registered name kept to save it back under."""
    config = dict(config)
    registered = config.pop(REGISTERED_KEY, None)
    try:
        built = cls.from_config(config)
    except Exception as exc:  # noqa: BLE001  (whatever the script's class says of the file's config)
        raise ModelFileError(path, f"{what}: {cls.__name__}.from_config refused the file's config "
                                   f"({type(exc).__name__}: {exc})") from None
    if registered is not None:
        built.__dict__["_fg_registered_name"] = registered  # (saved back under the file's registered name)
    return built


def _checked_nodes(entry: dict, name: str, path) -> list:
    """A Keras 3 entry's ``inbound_nodes``: a list whose node objects hold ``args`` as a list and ``kwargs`` as an
    object (Keras 2's nested lists pass as they are); anything else is the file's fault."""
    nodes = entry.get("inbound_nodes") or []
    bad = not isinstance(nodes, list) or any(isinstance(n, dict) and (
        not isinstance(n.get("args") or [], list) or not isinstance(n.get("kwargs") or {}, dict)) for n in nodes)
    if bad:
        raise ModelFileError(path, f"layer {name!r}: its inbound_nodes should be a list of nodes with 'args' (a list) "
                                   f"and 'kwargs' (an object), found {_short(nodes)}")
    return nodes


def _entry_name(entry: dict) -> str | None:
    config = entry.get("config")
    name = config.get("name") if isinstance(config, dict) else None
    name = entry.get("name") if name is None else name
    return name if isinstance(name, str) else None


def _inbound_refs(entry: dict, path, mask_sources: list | None = None) -> list[tuple]:
    """``(layer name, tensor index)`` of the tensors feeding ``entry`` in a Functional config (Keras 2 or 3
    node format; Keras 2's keyword tensors, e.g. tf_keras's MultiHeadAttention ``value=``, count too).

    A Keras 3 node's ``mask=`` keyword tensor is not an input: its producer's name goes to
    ``mask_sources`` (when given) instead. A tensor index that is not an integer is kept as None.
    """
    refs = []

    op_layer = isinstance(entry.get("module"), str) and entry["module"].startswith("keras.src.ops")

    def walk(obj, into):
        if isinstance(obj, dict):
            if obj.get("class_name") in ("__numpy__", "__tensor__") and not op_layer:
                # a layer called with a constant (initial_state=np.array(...)): not a chain (the graph loader
                # refuses it by name); an op's constant operand is its own business
                raise UnsupportedKerasFeature(f"layer {_entry_name(entry)!r} is called with a constant array")
            if obj.get("class_name") == "__keras_tensor__":  # Keras 3: {"config": {"keras_history": [name, 0, 0]}}
                config = obj.get("config")
                history = config.get("keras_history") if isinstance(config, dict) else None
                if not isinstance(history, list) or not history or not isinstance(history[0], str):
                    raise ModelFileError(path, f"layer {_entry_name(entry)!r}: an input tensor without a valid "
                                               f"keras_history: {_short(obj)}")
                into.append((history[0], _tensor_index(history)))
                return
            for v in obj.values():
                walk(v, into)
        elif isinstance(obj, list):
            if len(obj) >= 3 and isinstance(obj[0], str) and _is_int(obj[1]):  # Keras 2: [name, 0, 0, {kwargs}]
                into.append((obj[0], _tensor_index(obj)))
                if len(obj) > 3:
                    walk(obj[3], into)  # tensors passed as call keywords
                return
            for v in obj:
                walk(v, into)

    nodes = entry.get("inbound_nodes", [])
    for node in nodes if isinstance(nodes, list) else [nodes]:
        if isinstance(node, dict) and "args" in node:  # Keras 3: {"args": [...], "kwargs": {...}}
            walk(node["args"], refs)
            kwargs = node.get("kwargs")
            for key, value in (kwargs.items() if isinstance(kwargs, dict) else ()):
                if key == "mask" and mask_sources is not None:
                    masks: list = []
                    walk(value, masks)
                    mask_sources.extend(n for n, _ in masks)
                else:
                    walk(value, refs)
        else:
            walk(node, refs)
    return refs


def _tensor_index(ref: list):
    return ref[2] if len(ref) >= 3 and _is_int(ref[2]) else None


def _returns_state(entry) -> bool:
    """True when a layer entry (or a wrapper's inner ``layer``/``backward_layer``) has ``return_state``."""
    config = entry.get("config") if isinstance(entry, dict) else None
    if not isinstance(config, dict):
        return False
    return bool(config.get("return_state")) or any(_returns_state(config.get(k)) for k in ("layer", "backward_layer"))


#: Keras 3 op layers that compute a mask passed on as ``mask=`` (Embedding(mask_zero)'s ``x != 0``)
_MASK_OPS = {"NotEqual", "Equal", "Any", "Cast", "LogicalNot"}
#: Keras 3 op layers a chain checks no further here (GetItem is refused as a chain and built as a graph; so is
#: ``keras.ops.softmax``, which, unlike the Softmax layer, takes no mask and passes none on)
_CHAIN_OPS = {"GetItem"}
#: the class names of a Functional model's config entry
GRAPH_CLASSES = ("Functional", "Model")


def _is_op(entry) -> bool:
    """A Keras 3 op layer (``keras.src.ops...``: NotEqual, Any, LogicalOr, ExpandDims, ...), not a layer."""
    module = entry.get("module")
    if isinstance(module, str):
        return module.startswith("keras.src.ops")
    config = entry.get("config")  # legacy .h5 from Keras 3: no module; an op's config holds no trainable
    cls = entry.get("class_name")
    ops = registry.model_class("KerasOp").supported_ops
    if isinstance(cls, str) and registry.lookup(cls) is not None and cls not in ops:
        return False  # a layer whose config leaves trainable out (Keras 3's SpatialDropout1D)
    return (cls in _MASK_OPS or (isinstance(config, dict) and "trainable" not in config
            and cls not in ("InputLayer", "Sequential") + GRAPH_CLASSES))


def _propagated_masks(entries: list, mask_only: list, sources_of: list, names: list) -> bool:
    """Whether the mask ops are those Keras 3 records for the masks that Embedding(mask_zero=True) and
    Masking layers propagate (``x != 0`` of an Embedding's input, ``x != mask_value`` of a Masking's),
    rather than a mask of the user's own (``mask=ops.not_equal(ids, 1)``, which the graph loader computes)."""
    compared = set()
    for i, e in enumerate(entries):
        config = e.get("config") if isinstance(e.get("config"), dict) else {}
        if e["class_name"] == "Embedding" and config.get("mask_zero") and sources_of[i]:
            compared.add((sources_of[i][0], 0.0))
        elif e["class_name"] == "Masking" and sources_of[i]:
            compared.add((sources_of[i][0], float(config.get("mask_value", 0.0) or 0.0)))
    # a layer between the mask's maker and its user that ends the mask (Conv1D, pooling, Flatten, ...): the
    # recorded mask is the user's own, not a propagated one
    if any(registry.lookup(e["class_name"]) is not None and not registry.lookup(e["class_name"]).supports_masking
           for e in entries):
        return False
    masking_inputs = {sources_of[i][0] for i, e in enumerate(entries) if e["class_name"] == "Masking" and sources_of[i]}
    index = {n: i for i, n in enumerate(names)}
    for i in mask_only:
        if entries[i]["class_name"] == "Any":  # only a Masking's x != v reduces the last axis, once
            src = index.get(sources_of[i][0]) if sources_of[i] else None
            inner = sources_of[src] if src is not None else []
            if (src is None or entries[src]["class_name"] != "NotEqual" or not inner or inner[0] not in masking_inputs
                    or (entries[i].get("config") or {}).get("axis", -1) not in (-1, [-1])):
                return False
        if entries[i]["class_name"] not in ("NotEqual", "Equal"):
            continue
        nodes = entries[i].get("inbound_nodes")
        args = nodes[0].get("args") if isinstance(nodes, list) and nodes and isinstance(nodes[0], dict) else None
        value = args[1] if isinstance(args, list) and len(args) == 2 else None
        if (isinstance(value, bool) or not isinstance(value, (int, float)) or not sources_of[i]
                or (sources_of[i][0], float(value)) not in compared):
            return False
    return True


def _functional_chain(entries: list, path) -> list[int]:
    """Indices of a Functional config's layers in chain order, or refuse a graph that is not a plain chain."""
    names = []
    for i, e in enumerate(entries):
        _entry(e, path, f"layer {i}")
        name = _entry_name(e)
        if name is None:
            raise ModelFileError(path, f"layer {i} ({e['class_name']}) of the Functional model has no name")
        names.append(name)
    if len(set(names)) != len(names):
        raise ModelFileError(path, "the Functional model config names some layers twice")
    index = {n: i for i, n in enumerate(names)}
    inputs = [i for i, e in enumerate(entries) if e["class_name"] == "InputLayer"]
    if len(inputs) != 1:
        raise UnsupportedKerasFeature(
            f"Functional model with {len(inputs)} inputs: fastgru loads models that are a plain chain of layers"
        )
    consumers: dict[str, list[str]] = {}
    mask_sources: list[str] = []
    refs_of = [_inbound_refs(e, path, mask_sources) for e in entries]
    sources_of = [[n for n, _ in refs] for refs in refs_of]
    # layers that only compute a mask passed as mask= (Keras 3 records Embedding(mask_zero)'s x != 0 as
    # an op layer): fastgru propagates the same mask from the Embedding or Masking layer itself
    consumers_of: dict[str, set] = {}
    for i, sources in enumerate(sources_of):
        for s in sources:
            consumers_of.setdefault(s, set()).add(i)
    mask_only = {index[n] for n in mask_sources if n in index}
    grew = True
    while grew:  # the op layers upstream that feed only the mask (e.g. not_equal -> any -> mask=)
        grew = False
        for i, e in enumerate(entries):
            used_by = consumers_of.get(names[i], set())
            if i not in mask_only and e["class_name"] in _MASK_OPS and used_by and used_by <= mask_only:
                mask_only.add(i)
                grew = True
    mask_only = {i for i in mask_only if consumers_of.get(names[i], set()) <= mask_only}
    if mask_only:
        makers = {e["class_name"] for e in entries if (e["class_name"] == "Masking" or (
            e["class_name"] == "Embedding" and isinstance(e.get("config"), dict) and e["config"].get("mask_zero")))}
        odd = sorted(names[i] for i in mask_only if entries[i]["class_name"] not in _MASK_OPS)
        if odd or not makers:
            raise UnsupportedKerasFeature(
                f"the model passes a mask computed by layer(s) {', '.join(sorted(names[i] for i in mask_only))} "
                "as mask=: fastgru takes masks only from Masking or Embedding(mask_zero=True)")
        if not _propagated_masks(entries, [i for i in mask_only], sources_of, names):
            raise UnsupportedKerasFeature("a Functional chain passing its own mask= is built as a graph")
    for i, e in enumerate(entries):
        if i not in mask_only and _is_op(e) and e["class_name"] not in _CHAIN_OPS:
            # ``h * 2.0`` is Keras's op Multiply, not the merge layer of that name: the graph loader
            # (io/keras_functional.py) refuses it by name
            raise UnsupportedKerasFeature(
                f"layer {names[i]!r} is Keras's op layer {e['class_name']} (an operation on tensors), not a layer")
    for i, e in enumerate(entries):
        if i in mask_only:
            continue
        nodes = _checked_nodes(e, names[i], path)
        if any(isinstance(n, dict) and (len(n.get("args") or []) > 1 or any(
                v is not None and k not in ("mask", "training") for k, v in (n.get("kwargs") or {}).items()))
               for n in nodes):  # (a custom layer's temperature=0.25: kept on a graph's node)
            raise UnsupportedKerasFeature(f"layer {names[i]!r} is called with options: built as a graph")
        if any(isinstance(n, dict) and isinstance((n.get("args") or [None])[0], list)
               for n in nodes):  # (a merge on a one-element list: its call takes the list)
            raise UnsupportedKerasFeature(f"layer {names[i]!r} is called on a list: built as a graph")
        sources = sources_of[i]
        if e["class_name"] != "InputLayer" and len(sources) != 1:
            raise UnsupportedKerasFeature(
                f"layer {names[i]!r} ({e['class_name']}) has {len(sources)} inputs: fastgru loads models "
                "that are a plain chain of layers"
            )
        for s, tensor in refs_of[i]:
            if s not in index:
                raise ModelFileError(path, f"layer {names[i]!r} takes its input from {s!r}, which the config "
                                           "does not define")
            if tensor != 0:  # a recurrent layer's state (return_state=True), not the output a chain passes on
                raise UnsupportedKerasFeature(
                    f"layer {names[i]!r} takes output {tensor} of layer {s!r}: fastgru loads models that are a "
                    "plain chain of layers")
            consumers.setdefault(s, []).append(names[i])
        if _returns_state(e):
            raise UnsupportedKerasFeature(
                f"layer {names[i]!r} ({e['class_name']}) returns its states (return_state=True): fastgru loads "
                "models that are a plain chain of layers")
    chain = [inputs[0]]
    on_chain = {inputs[0]}  # a set: the cycle check stays linear in the number of layers
    current = names[inputs[0]]
    while consumers.get(current):
        nexts = consumers[current]
        if len(nexts) != 1:
            raise UnsupportedKerasFeature(
                f"layer {current!r} feeds {len(nexts)} layers ({', '.join(nexts)}): fastgru loads models that are "
                "a plain chain of layers"
            )
        current = nexts[0]
        if index[current] in on_chain:
            raise ModelFileError(path, f"the Functional model config has a cycle through layer {current!r}")
        chain.append(index[current])
        on_chain.add(index[current])
    if len(chain) != len(entries) - len(mask_only):
        raise UnsupportedKerasFeature("Functional model is not a plain chain of layers (some layers are off the chain)")
    return chain


def _check_chain_output(config: dict, last: str | None) -> None:
    """Refuse a Functional config whose outputs are not exactly tensor 0 of its chain's last layer ``last``:
    several outputs, a dict of outputs, a state or another layer's output. A config without
    ``output_layers`` ends at its chain's end."""
    outputs = config.get("output_layers")
    if outputs is None:
        return
    if isinstance(outputs, list) and len(outputs) == 1 and isinstance(outputs[0], list):
        outputs = outputs[0]  # a list of one output (tf_keras always writes one; Keras 3 returns one array)
    if not (isinstance(outputs, list) and len(outputs) >= 3 and isinstance(outputs[0], str)):
        raise UnsupportedKerasFeature(f"the model's outputs {_short(outputs)} are not one tensor: fastgru loads "
                                      "them as a graph")
    if outputs[0] != last or _tensor_index(outputs) != 0:
        raise UnsupportedKerasFeature(
            f"the model's output is output {outputs[2]!r} of layer {outputs[0]!r}, not the end of its chain of "
            "layers: fastgru loads models that are a plain chain of layers")


# ---------------------------------------------------------------------------------------------
# a GetItem op's index (x[:, -1]) as Keras 3 writes it in a node's arguments
# ---------------------------------------------------------------------------------------------
def key_to_config(key: tuple) -> list:
    """Keras 3's serialization of an index (a list, one entry per item)."""
    out = []
    for item in key:
        if isinstance(item, slice):
            out.append({"class_name": "__slice__", "config": {"start": item.start, "stop": item.stop,
                                                                "step": item.step}})
        elif item is Ellipsis:
            out.append({"class_name": "__ellipsis__", "config": {}})
        else:
            out.append(None if item is None else int(item))
    return out


def key_from_config(value, where: str):
    """The index Keras 3 wrote for a GetItem node (one item or a list of them); ValueError when malformed."""
    items = value if isinstance(value, list) else [value]
    key = []
    for item in items:
        if item is None:
            key.append(None)
        elif isinstance(item, int) and not isinstance(item, bool):
            key.append(item)
        elif isinstance(item, dict) and item.get("class_name") == "__slice__" and isinstance(item.get("config"),
                                                                                            dict):
            c = item["config"]
            bounds = [c.get(k) for k in ("start", "stop", "step")]
            if not all(b is None or (isinstance(b, int) and not isinstance(b, bool)) for b in bounds):
                raise ValueError(f"{where}: slice bounds must be integers or null, found {c!r}")
            key.append(slice(*bounds))
        elif isinstance(item, dict) and item.get("class_name") == "__ellipsis__":
            key.append(Ellipsis)
        else:
            raise ValueError(f"{where}: an index item fastgru does not know: {item!r}")
    return tuple(key)
