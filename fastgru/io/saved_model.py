"""Keras 2 SavedModel directories (``model.save("dir")`` in tf.keras 2.5+ / tf_keras) and TensorFlow
checkpoints (``model.save_weights(prefix, save_format="tf")``), read without TensorFlow.

What is read, and from where:

* ``keras_metadata.pb`` (a ``SavedMetadata`` message: repeated nodes with ``node_id``, ``node_path``,
  ``identifier`` and a JSON ``metadata`` string). The root node's JSON holds ``model_config`` (the same
  ``{"class_name", "config"}`` as an .h5 file's ``model_config``), ``keras_version`` and
  ``training_config``. Its tuples are tagged ``{"class_name": "__tuple__", "items": [...]}`` and its
  objects carry ``shared_object_id`` keys: both are undone here, so the config is an .h5 config and goes
  through the same parser and model builder (:func:`fastgru.io._parse`, :func:`fastgru.io.build_model`).
* ``variables/variables.index`` + ``.data-*``: the tensor bundle (:mod:`.tensor_bundle`). Checkpoint keys
  are not derived from layer names: the checkpoint's own object graph (the ``_CHECKPOINTABLE_OBJECT_GRAPH``
  string tensor, a ``TrackableObjectGraph``) is walked from the root through ``layer_with_weights-N``
  children (recursively for nested models), which are the model's layers that have weights in
  ``model.layers`` order; in a SavedModel each such layer node has a ``variables`` child listing its
  variables in ``layer.weights`` order (``variables/N/...`` or ``layer_with_weights-N/kernel/...`` keys
  alike), in a ``save_weights`` checkpoint the layer's variables are its named children (``kernel``,
  ``cell/kernel``, ``forward_layer/cell/kernel``, ``layer/kernel``), taken in the fastgru layer's weight
  order. Where keras_metadata.pb names the layer at that node, the name must be the config's.
* ``saved_model.pb`` is not parsed (the graphs and functions in it are TensorFlow's, not needed): it must
  exist (it is what makes a folder a SavedModel), and when keras_metadata.pb is missing it is scanned
  for the ``_tf_keras_`` identifiers that tell a Keras SavedModel from TensorFlow before 2.5 from a
  ``tf.saved_model.save`` export, to say which it is.

Every file must be a regular file inside the directory (symlinks leaving it are refused), sizes are
capped before reading, and every tensor and index block has its CRC-32C checked.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field

from ..errors import ModelFileError, UnsupportedKerasFeature
from . import protobuf_wire as pw
from .keras_rnn_cells import stack_groups
from .saved_model_vocab import fill_vocabularies
from .tensor_bundle import OBJECT_GRAPH_KEY, Bundle, open_inside, read_small_file

MAX_METADATA_BYTES = 64 << 20
#: how much of saved_model.pb is scanned for Keras identifiers when keras_metadata.pb is missing
MAX_SCAN_BYTES = 256 << 20
#: nested models deeper than this are refused (a damaged object graph could loop)
MAX_NESTING = 64
#: nodes of a checkpoint's object graph (a Keras layer has about 40): caps the memory a damaged graph takes
MAX_NODES = 200_000
_NO_ENTRIES: dict = {}  # shared by the (many) nodes without children or tensors; never written to
FORMAT = "Keras 2 SavedModel directory (tf.keras model.save)"
_LAYER_CHILD = re.compile(r"layer_with_weights-(\d+)$")


# ---------------------------------------------------------------------------------------------
# what a path is
# ---------------------------------------------------------------------------------------------
def is_checkpoint_prefix(path) -> bool:
    """True for ``save_weights(prefix, save_format="tf")``'s prefix: no such file, but ``prefix.index``."""
    p = os.fspath(path)
    return not os.path.lexists(p) and os.path.isfile(p + ".index")


def variables_prefix(path) -> str:
    return os.path.join(os.fspath(path), "variables", "variables")


# ---------------------------------------------------------------------------------------------
# the object graph
# ---------------------------------------------------------------------------------------------
@dataclass
class ObjectGraph:
    """A checkpoint's ``TrackableObjectGraph``: per node, its named children and its tensors."""

    children: list[dict[str, int]] = field(default_factory=list)
    attributes: list[dict[str, str]] = field(default_factory=list)

    @classmethod
    def parse(cls, data: bytes, path) -> ObjectGraph:
        graph = cls()
        try:
            for number, wire, span in pw.fields(data):  # streamed: a damaged graph is refused as it grows
                if number != 1:
                    continue
                if len(graph.children) >= MAX_NODES:
                    raise ModelFileError(path, f"the checkpoint's object graph has more than {MAX_NODES} nodes: "
                                               "damaged or not a Keras model")
                if wire != 2:
                    raise pw.WireError("an object graph node is not a message")
                node = pw.message(data, span[0], span[1], 1)
                kids: dict[str, int] = {}
                for ref in pw.get_messages(data, node, 1, depth=1):
                    name = pw.get_str(data, ref, 2)
                    kids.setdefault(name, pw.get_int(ref, 1, signed=True))
                attrs: dict[str, str] = {}
                for tensor in pw.get_messages(data, node, 2, depth=1):
                    attrs.setdefault(pw.get_str(data, tensor, 1), pw.get_str(data, tensor, 3))
                graph.children.append(kids or _NO_ENTRIES)
                graph.attributes.append(attrs or _NO_ENTRIES)
        except pw.WireError as exc:
            raise ModelFileError(path, f"the checkpoint's object graph is damaged ({exc})") from None
        if not graph.children:
            raise ModelFileError(path, "the checkpoint's object graph is empty")
        n = len(graph.children)
        for kids in graph.children:
            for name, node in kids.items():
                if not 0 <= node < n:
                    raise ModelFileError(path, f"the checkpoint's object graph has a child {name!r} -> node {node} "
                                               f"of {n}: damaged")
        return graph

    def child(self, node: int, name: str) -> int | None:
        return self.children[node].get(name)

    def resolve(self, names, node: int = 0) -> int | None:
        for name in names:
            node = self.child(node, name)
            if node is None:
                return None
        return node

    def weighted_layers(self, path) -> list[tuple[tuple[str, ...], int]]:
        """(path of local names, node) of each layer with weights, in order, nested models flattened."""
        out: list[tuple[tuple[str, ...], int]] = []

        def walk(node: int, prefix: tuple[str, ...], stack: tuple[int, ...]):
            if len(stack) > MAX_NESTING or node in stack:
                raise ModelFileError(path, "the checkpoint's object graph nests models too deeply or in a cycle")
            numbered = sorted((int(m.group(1)), name) for name in self.children[node]
                              if (m := _LAYER_CHILD.match(name)))
            for _, name in numbered:
                kid = self.children[node][name]
                if self._is_model(kid):
                    walk(kid, prefix + (name,), stack + (node,))
                else:
                    out.append((prefix + (name,), kid))

        walk(0, (), ())
        return out

    def _is_model(self, node: int) -> bool:
        return any(_LAYER_CHILD.match(n) or n.startswith("layer-") for n in self.children[node])

    def variable_key(self, node: int) -> str | None:
        return self.attributes[node].get("VARIABLE_VALUE")

    def layer_variable_keys(self, node: int, layer, path, where: str) -> list[str]:
        """The checkpoint keys of a layer's variables, in ``layer.weights`` order."""
        listed = self.child(node, "variables")
        if listed is not None:  # SavedModel: the layer's ``variables`` list, in layer.weights order
            kids = self.children[listed]
            keys = []
            for i in range(len(kids)):
                var = kids.get(str(i))
                key = None if var is None else self.variable_key(var)
                if key is None:
                    raise ModelFileError(path, f"{where}: variable {i} of the layer's variables list has no "
                                               "value in the checkpoint: damaged object graph")
                keys.append(key)
            return keys
        # save_weights checkpoint: the variables are the layer's named children
        keys = []
        inner = getattr(layer, "layers", None) if type(layer).__name__ == "Bidirectional" else None
        parts = list(zip(("forward_layer", "backward_layer"), inner)) if inner is not None else [(None, layer)]
        for side, sub in parts:
            base = node if side is None else self.child(node, side)
            if base is None:
                raise ModelFileError(path, f"{where}: the checkpoint has no {side} for layer {layer.name!r}")
            for name in sub.weight_paths:
                var = None
                for route in ((name,), ("cell", name), ("layer", name)):
                    var = self.resolve(route, base)
                    if var is not None and self.variable_key(var) is not None:
                        break
                if var is None or self.variable_key(var) is None:
                    raise ModelFileError(path, f"{where}: the checkpoint has no variable {name!r} for layer "
                                               f"{layer.name!r} ({type(layer).__name__})")
                keys.append(self.variable_key(var))
        return keys


def read_object_graph(bundle: Bundle, path) -> ObjectGraph:
    if OBJECT_GRAPH_KEY not in bundle.entries:
        raise ModelFileError(path, "the checkpoint has no object graph (_CHECKPOINTABLE_OBJECT_GRAPH): written by "
                                   "TensorFlow 1.x's Saver? fastgru reads object-based checkpoints (TensorFlow 2)")
    strings = bundle.read_strings(OBJECT_GRAPH_KEY)
    if len(strings) != 1:
        raise ModelFileError(path, f"the checkpoint's object graph holds {len(strings)} strings, expected 1")
    return ObjectGraph.parse(strings[0], path)


# ---------------------------------------------------------------------------------------------
# keras_metadata.pb
# ---------------------------------------------------------------------------------------------
def _untag(obj, path, depth: int = 0):
    """The JSON as an .h5 config would have it: ``__tuple__`` and ``TensorShape`` objects become lists
    (an .h5 file's JSON encoder writes both as lists), ``shared_object_id`` keys go."""
    if depth > 200:
        raise ModelFileError(path, "keras_metadata.pb: the model config is nested too deeply: damaged file")
    if isinstance(obj, dict):
        if obj.get("class_name") in ("__tuple__", "TensorShape") and isinstance(obj.get("items"), list) \
                and len(obj) == 2:
            return [_untag(v, path, depth + 1) for v in obj["items"]]
        return {k: _untag(v, path, depth + 1) for k, v in obj.items() if k != "shared_object_id"}
    if isinstance(obj, list):
        return [_untag(v, path, depth + 1) for v in obj]
    return obj


def _json(text: str, path, where: str):
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ModelFileError(path, f"keras_metadata.pb: {where} is not valid JSON ({type(exc).__name__}: "
                                   f"{str(exc)[:100]})") from None


@dataclass
class KerasMetadata:
    root: dict
    identifier: str
    by_path: dict[str, str]  # node_path -> raw JSON metadata (parsed when needed)

    def layer_name(self, node_path: str, path) -> str | None:
        text = self.by_path.get(node_path)
        if text is None:
            return None
        meta = _json(text, path, f"the metadata of {node_path}")
        name = meta.get("name") if isinstance(meta, dict) else None
        return name if isinstance(name, str) else None


def parse_keras_metadata(data: bytes, path) -> KerasMetadata:
    root_text, identifier, by_path = None, "", {}
    try:
        count = 0
        for number, wire, span in pw.fields(data):  # streamed, the number of nodes capped
            if number != 1:
                continue
            count += 1
            if count > MAX_NODES or wire != 2:
                raise ModelFileError(path, "keras_metadata.pb: too many nodes, or a node that is not a message: "
                                           "damaged or not Keras metadata")
            node = pw.message(data, span[0], span[1], 1)
            node_path = pw.get_str(data, node, 3)
            text = pw.get_str(data, node, 5)
            if node_path == "root":
                root_text, identifier = text, pw.get_str(data, node, 4)
            else:
                by_path.setdefault(node_path, text)
    except pw.WireError as exc:
        raise ModelFileError(path, f"keras_metadata.pb is damaged ({exc})") from None
    if root_text is None:
        raise ModelFileError(path, "keras_metadata.pb has no root node: damaged or not Keras metadata")
    root = _json(root_text, path, "the root node's metadata")
    if not isinstance(root, dict):
        raise ModelFileError(path, "keras_metadata.pb: the root node's metadata is not a JSON object")
    return KerasMetadata(root=root, identifier=identifier, by_path=by_path)


# ---------------------------------------------------------------------------------------------
# the directory
# ---------------------------------------------------------------------------------------------
@dataclass
class SavedModelSource:
    """What a SavedModel directory gives the model builder: config, version, training config, weights."""

    config: dict
    version: str
    training_config: dict | None
    bundle: Bundle
    graph: ObjectGraph
    metadata: KerasMetadata | None

    @property
    def weight_bytes(self) -> int:
        return self.bundle.data_bytes()

    def close(self) -> None:
        self.bundle.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _refuse_without_metadata(root_real: str, path) -> None:
    """keras_metadata.pb is missing: say whether this is an old Keras SavedModel or not a Keras one."""
    keras = False
    with open_inside(root_real, os.path.join(root_real, "saved_model.pb"), path, "saved_model.pb") as f:
        tail = b""
        scanned = 0
        while scanned < MAX_SCAN_BYTES:
            chunk = f.read(1 << 20)
            if not chunk:
                break
            if b"_tf_keras_" in tail + chunk:
                keras = True
                break
            tail = chunk[-16:]
            scanned += len(chunk)
    if keras:
        raise UnsupportedKerasFeature(
            f"{path}: a Keras SavedModel written by TensorFlow before 2.5 (no keras_metadata.pb) is not supported: "
            "load it in TensorFlow and save it again (model.save('m.h5') or with TensorFlow 2.5+)")
    raise ModelFileError(path, "a TensorFlow SavedModel without Keras metadata (no keras_metadata.pb): written by "
                               "tf.saved_model.save or Keras 3's model.export, it holds TensorFlow graphs but no "
                               "Keras model config, which fastgru needs; save the Keras model with model.save")


def read_saved_model(path) -> SavedModelSource:
    """Config, Keras version, training config and the weights' checkpoint of a Keras 2 SavedModel folder."""
    root_real = os.path.realpath(path)
    if not any(os.path.lexists(os.path.join(root_real, n)) for n in ("saved_model.pb", "saved_model.pbtxt")):
        raise ModelFileError(path, "is a directory, but not a TensorFlow SavedModel (no saved_model.pb): fastgru "
                                   "loads .keras and .h5 files and Keras 2 SavedModel directories")
    if not os.path.lexists(os.path.join(root_real, "saved_model.pb")):
        raise ModelFileError(path, "a SavedModel in text form (saved_model.pbtxt) is not supported")
    meta_file = os.path.join(root_real, "keras_metadata.pb")
    if not os.path.lexists(meta_file):
        _refuse_without_metadata(root_real, path)
    meta = parse_keras_metadata(read_small_file(root_real, meta_file, path, "keras_metadata.pb",
                                                MAX_METADATA_BYTES), path)
    config = meta.root.get("model_config")
    class_name = meta.root.get("class_name")
    if not isinstance(config, dict):
        if meta.identifier == "_tf_keras_model" or meta.root.get("is_graph_network") is False:
            raise UnsupportedKerasFeature(
                f"{path}: a subclassed Keras model (class {class_name!r}): its layers and call() are Python code "
                "that the SavedModel does not describe as a config; fastgru loads Sequential and Functional models")
        raise ModelFileError(path, "keras_metadata.pb has no model_config: not a Keras model fastgru can rebuild")
    config = fill_vocabularies(_untag(config, path), meta.root.get("config"))
    if config.get("class_name") not in ("Sequential", "Functional", "Model") and \
            (meta.identifier == "_tf_keras_model" or meta.root.get("is_graph_network") is False):
        raise UnsupportedKerasFeature(
            f"{path}: a subclassed Keras model (class {config.get('class_name')!r}): its call() is Python code the "
            "SavedModel does not describe; fastgru loads Sequential and Functional models")
    version = meta.root.get("keras_version")
    # only Keras 2 writes keras_metadata.pb: a SavedModel without a version is a Keras 2 one
    version = version if isinstance(version, str) and version else "2"
    training_config = meta.root.get("training_config")
    if isinstance(training_config, dict):
        training_config = _untag(training_config, path)  # (made fastgru's by keras2_training.training_config)
    else:
        training_config = None
    bundle = Bundle(variables_prefix(root_real), path, root_real)
    try:
        graph = read_object_graph(bundle, path)
    except BaseException:
        bundle.close()
        raise
    return SavedModelSource(config, version, training_config, bundle, graph, meta)


def open_checkpoint(path) -> tuple[Bundle, ObjectGraph]:
    """The bundle and object graph of a checkpoint prefix, or of a SavedModel folder's variables."""
    if os.path.isdir(path):
        root_real = os.path.realpath(path)
        bundle = Bundle(variables_prefix(root_real), path, root_real)
    else:
        bundle = Bundle(path, path)
    try:
        return bundle, read_object_graph(bundle, path)
    except BaseException:
        bundle.close()
        raise


# ---------------------------------------------------------------------------------------------
# weights -> layers
# ---------------------------------------------------------------------------------------------
def assign_weights(layers, names, bundle: Bundle, graph: ObjectGraph, path,
                   metadata: KerasMetadata | None = None, groups: list[list[int]] | None = None) -> None:
    """Fill the (built) fastgru layers from the checkpoint: its layers with weights pair with ``layers``'
    in order (Keras's own rule for these checkpoints); ``names``: the Keras names of ``layers`` (from
    the config) to check against keras_metadata.pb's, or None. ``groups``: the indices of the fastgru layers
    one Keras layer stands for, in order (an ``RNN`` over a stack of cells is one layer in the checkpoint,
    its variables the cells' in turn; its Keras name the last one's); by default each layer its own."""
    from .keras_v3 import check_shapes, set_checked

    groups = [[i] for i in range(len(layers))] if groups is None else groups
    ours = [([layers[i] for i in group], names[group[-1]]) for group in groups
            if any(layers[i].weights for i in group)]
    theirs = graph.weighted_layers(path)
    if len(ours) != len(theirs):
        raise ModelFileError(path, f"the checkpoint has {len(theirs)} layers with weights, the model has "
                                   f"{len(ours)} ({', '.join('+'.join(l.name for l in g) for g, _ in ours)})")
    plan = []
    for (members, name), (route, node) in zip(ours, theirs):
        where = "/".join(route)
        if metadata is not None and name is not None:
            stored = metadata.layer_name("root." + ".".join(route), path)
            if stored is not None and stored != name:
                raise ModelFileError(path, f"the checkpoint's layer {where} is {stored!r} in keras_metadata.pb, "
                                           f"the config's layer in that place is {name!r}: inconsistent directory")
        if len(members) > 1:  # (tf_keras's StackedRNNCells lists its trainable cells' variables first)
            members = [m for m in members if m.trainable] + [m for m in members if not m.trainable]
        if len(members) == 1:
            keys = graph.layer_variable_keys(node, members[0], path, where)
        elif graph.child(node, "variables") is None:  # (a save_weights checkpoint names a cell's variables)
            raise UnsupportedKerasFeature(f"layer {where}: a stack of cells from a save_weights checkpoint")
        else:
            keys = graph.layer_variable_keys(node, None, path, where)
        expected = sum(len(layer.weights) for layer in members)
        if len(keys) != expected:
            raise ModelFileError(path, f"layer {where} has {len(keys)} variables in the checkpoint, layer "
                                       f"{name or members[-1].name!r} ({type(members[-1]).__name__}"
                                       f"{' stack' if len(members) > 1 else ''}) expects {expected}")
        for layer in members:
            own, keys = keys[:len(layer.weights)], keys[len(layer.weights):]
            entries = [bundle.entry(k) for k in own]
            check_shapes(layer, [e.shape for e in entries], path, where=where)  # from the index, before any data
            plan.append((layer, own, where))
    for layer, keys, where in plan:
        arrays = [bundle.read_float(k, f"{layer.name!r}.{n}", integers=w.dtype.kind in "iu")
                  for k, n, w in zip(keys, layer.weight_paths, layer.weights)]
        set_checked(layer, arrays, path, where=where)


def load_into(model, spec, source: SavedModelSource, path) -> None:
    """The weights of a SavedModel folder into the model built from its config (``spec``: the parsed config)."""
    names = [s.config.get("name") if isinstance(s.config.get("name"), str) else None for s in spec.layers]
    for layer_spec in spec.layers:  # (tf_keras keeps a lookup's vocabulary out of a SavedModel's config)
        vocabulary_layer = layer_spec.class_name in ("StringLookup", "IntegerLookup", "TextVectorization")
        if vocabulary_layer and not layer_spec.config.get("vocabulary"):
            raise UnsupportedKerasFeature(
                f"layer {layer_spec.config.get('name')!r} ({layer_spec.class_name}): a SavedModel keeps its "
                "vocabulary in TensorFlow's lookup tables, outside the layer's config, which fastgru does not read "
                "(without it every token would be out of vocabulary); save the model as .h5 or .keras")
    assign_weights(model._layers_and_ops, names, source.bundle, source.graph, path, source.metadata,
                   stack_groups([s.v3_path for s in spec.layers]))


def load_checkpoint_weights(model, path) -> None:
    """``model.load_weights(prefix)`` for a save_weights(save_format="tf") checkpoint or a SavedModel folder."""
    bundle, graph = open_checkpoint(path)
    paths = getattr(model, "_keras_v3_paths", None)  # (a model loaded from a file: its stacks of cells)
    groups = stack_groups(paths) if isinstance(paths, list) and len(paths) == len(model._layers_and_ops) else None
    with bundle:
        assign_weights(model._layers_and_ops, [None] * len(model._layers_and_ops), bundle, graph, path, groups=groups)


def holds_a_model(config, depth: int = 0) -> bool:
    """Whether a model config holds a nested model (a Sequential or Functional entry below its root)."""
    if depth > 64:
        return False
    if isinstance(config, dict):
        if depth and config.get("class_name") in ("Sequential", "Functional", "Model"):
            return True
        return any(holds_a_model(v, depth + 1) for v in config.values())
    return isinstance(config, list) and any(holds_a_model(v, depth + 1) for v in config)
