"""Keras's generic ``RNN`` layer around one built-in cell, read as the matching recurrent layer.

``keras.layers.RNN(keras.layers.GRUCell(64), return_sequences=True)`` computes what
``keras.layers.GRU(64, return_sequences=True)`` computes: the same cell, looped by the same base class,
with its variables at the same place of a Keras 3 weights file (``<layer path>/cell/vars``: kernel,
recurrent kernel, bias). fastgru therefore loads the first as the second: the cell's options (units,
activations, initializers, dropouts, ``reset_after``, ...) joined with the RNN's own (return_sequences,
return_state, go_backwards, stateful, unroll, zero_output_for_mask), under the RNN layer's name. Saving
writes it back as that GRU, LSTM or SimpleRNN layer, which Keras loads to the same numbers.

``RNN([cell_1, cell_2, ...])`` (Keras's ``StackedRNNCells``) feeds each step's output of one cell to the
next: the stack of those layers, each but the last returning its sequence (masked steps skipped by all), each
cell's variables at ``<layer path>/cell/cells/<cell key>/vars`` (:func:`stacked_layers`). A stack returning its
states (every cell's), given initial states, or going backwards (with a mask, the layers after the first would
see the sequence reversed and its mask not) is refused. A script's own cell class given in ``custom_objects`` (or
registered) is looped step by step (``layers/cell_rnn.py``, :func:`custom_cell_rnn`); other cells are refused by
name: Keras's ``ConvLSTM`` cells and a cell class not given (its ``call`` is code, which a file cannot carry).
"""

from __future__ import annotations

import warnings

from ..errors import ModelFileError, UnsupportedKerasFeature
from ..layers import registry
from .config_checks import _regularizer_option, _trainable
from .keras_graph import _entry, from_script_config

#: Keras cell class -> the recurrent layer that loops it
CELL_LAYERS = {"GRUCell": "GRU", "LSTMCell": "LSTM", "SimpleRNNCell": "SimpleRNN"}
#: the options of Keras's RNN layer (beside its cell)
_RNN_OPTIONS = ("name", "trainable", "dtype", "return_sequences", "return_state", "go_backwards", "stateful", "unroll",
                "zero_output_for_mask")
#: the keys of a cell's config that belong to the cell object, not to the layer's math
_CELL_OWN = ("name", "trainable", "dtype")


def rnn_as_layer(config: dict, label: str, path) -> tuple[str, dict]:
    """The (class name, config) of the recurrent layer a Keras ``RNN`` config with one built-in cell
    stands for; UnsupportedKerasFeature for any other cell, ModelFileError for a malformed one."""
    cell = config.get("cell")
    if isinstance(cell, list):  # (Keras 2 configs may hold the list of cells of RNN([...]) directly)
        raise UnsupportedKerasFeature(
            f"layer {label}: RNN over a list of cells is not supported (stack GRU/LSTM/SimpleRNN layers, "
            "return_sequences=True on all but the last, for the same model)")
    cell_cls, cell_cfg = _entry(cell, path, f"layer {label}: cell")
    if cell_cls not in CELL_LAYERS:
        given = registry.custom_layer(cell_cls)
        if cell_cls == "StackedRNNCells":
            hint = "a stack of cells loads as a layer of its own, not inside Bidirectional or TimeDistributed"
        elif registry.passed_over(cell_cls.lstrip(">")):
            hint = ("the class custom_objects gives for it is not a fastgru cell: write it as a subclass of "
                    "fastgru.layers.Layer, with state_size and call(inputs, states) — `import fastgru as keras` in "
                    "the script that defines it")
        elif given is not None and not hasattr(given, "_fg_own_call"):
            hint = (f"the class custom_objects gives for it, {given.__name__}, is not a script's cell (a "
                    "fastgru.layers.Layer subclass with state_size and call(inputs, states))")
        elif given is not None:
            hint = ("a script's own cell loops in an RNN layer of its own, not in a stack of cells, RNN([cell, cell]) "
                    "(give each cell its RNN layer, return_sequences=True on all but the last), nor inside "
                    "Bidirectional or TimeDistributed")
        else:
            hint = (f"fastgru's RNN runs one of {', '.join(CELL_LAYERS)}, or a script's own cell class given in "
                    "load_model's custom_objects (fastgru runs no code from a file)")
        raise UnsupportedKerasFeature(f"layer {label}: RNN({cell_cls}) is not supported here ({hint})")
    merged = {key: value for key, value in cell_cfg.items() if key not in _CELL_OWN}
    for key, value in config.items():
        if key in merged:
            raise ModelFileError(path, f"layer {label}: option {key!r} is given both by the RNN and by its "
                                       f"{cell_cls}")
        if key != "cell":
            merged[key] = value
    if not _trainable(cell_cfg, f"{label}: cell", path):  # a frozen cell freezes the layer
        merged["trainable"] = False
    return CELL_LAYERS[cell_cls], merged


def is_stacked(entry) -> bool:
    """A Keras ``RNN`` entry over a stack of cells (``StackedRNNCells``, or a bare list in old configs)."""
    config = entry.get("config") if isinstance(entry, dict) else None
    if entry.get("class_name") != "RNN" or not isinstance(config, dict):
        return False
    cell = config.get("cell")
    return isinstance(cell, list) or (isinstance(cell, dict) and cell.get("class_name") == "StackedRNNCells")


def stacked_layers(config: dict, name: str, path) -> list[tuple[str, dict, str]]:
    """The recurrent layers an ``RNN`` over a stack of cells stands for: ``[(class name, config, cell class)]``
    in order, named ``<rnn name>_<cell name>`` but the last, which takes the RNN's name. (Keras 3 keeps the
    cells' variables at ``cell/cells/<snake-case cell class, numbered>/vars``.)"""
    label = f"{name} (RNN)"
    cell = config.get("cell")
    cells = cell if isinstance(cell, list) else (cell.get("config") or {}).get("cells")
    if not isinstance(cells, list) or not cells:
        raise ModelFileError(path, f"layer {label}: its StackedRNNCells config has no list of cells")
    if config.get("return_state"):
        raise UnsupportedKerasFeature(f"layer {label}: a stack of cells with return_state=True is not supported (its "
                                      "states are every cell's)")
    if config.get("go_backwards"):  # (the layers after the first would see the sequence reversed, its mask not)
        raise UnsupportedKerasFeature(f"layer {label}: a stack of cells with go_backwards=True is not supported")
    out, names = [], set()
    for i, entry in enumerate(cells):
        cell_cls, cell_cfg = _entry(entry, path, f"layer {label}: cell {i}")
        cell_name = cell_cfg.get("name") if isinstance(cell_cfg.get("name"), str) else f"cell_{i}"
        if cell_name in names:
            raise ModelFileError(path, f"layer {label}: two cells are named {cell_name!r}")
        names.add(cell_name)
        last = i == len(cells) - 1
        own = {k: v for k, v in config.items() if k not in ("cell", "name")}
        own.update(name=name if last else f"{name}_{cell_name}",
                   return_sequences=bool(config.get("return_sequences")) if last else True)
        out.append((*rnn_as_layer({**own, "cell": entry}, label, path), cell_cls))
    return out


def stack_groups(paths: list[str]) -> list[list[int]]:
    """The indices of the layers each Keras layer stands for, from their Keras 3 weight paths: the recurrent
    layers of one ``RNN`` over a stack of cells (``<rnn>/cell/cells/<cell>/vars``) together, every other layer
    on its own."""
    groups: list[list[int]] = []
    for i, where in enumerate(paths):
        stack = where.split("/cell/cells/")[0] + "/cell/cells/" if "/cell/cells/" in where else None
        if stack is not None and groups and paths[groups[-1][-1]].startswith(stack):
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def custom_cell_rnn(config: dict, name: str, path):
    """The layer looping a script's own cell (``RNN(MinimalRNNCell(32))``: its class given in ``load_model``'s
    ``custom_objects`` or registered, built by its ``from_config`` as Keras builds it), or None for another cell."""
    cell = config.get("cell")
    if not isinstance(cell, dict) or not isinstance(cell.get("class_name"), str) or cell["class_name"] in CELL_LAYERS:
        return None
    registered = cell.get("registered_name") if isinstance(cell.get("registered_name"), str) else None
    cls = registry.custom_layer(registered or cell["class_name"]) or registry.custom_layer(cell["class_name"])
    if cls is None or not hasattr(cls, "_fg_own_call"):
        return None
    _, cell_config = _entry(cell, path, f"layer {name!r}: cell")
    looped = from_script_config(cls, cell_config, f"layer {name!r}: its cell", path)
    options, ignored, loop = {k: v for k, v in config.items() if k in _RNN_OPTIONS}, [], registry.model_class("RNN")
    _regularizer_option(loop, "activity_regularizer", config.get("activity_regularizer"), f"{name!r} (RNN)",
                        options, ignored, path)  # (the loop's own option, as any layer's: applied in training)
    if ignored:
        warnings.warn(f"layer {name!r} (RNN): {', '.join(ignored)}: only affects training, not applied by fastgru",
                      stacklevel=2)
    try:
        return loop(looped, **options)
    except (TypeError, ValueError) as exc:
        raise ModelFileError(path, f"layer {name!r} (RNN): {exc}") from None
