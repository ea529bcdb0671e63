"""Keras's generic ``RNN`` layer around one built-in cell, read as the matching recurrent layer.

``keras.layers.RNN(keras.layers.GRUCell(64), return_sequences=True)`` computes what
``keras.layers.GRU(64, return_sequences=True)`` computes: the same cell, looped by the same base class,
with its variables at the same place of a Keras 3 weights file (``<layer path>/cell/vars``: kernel,
recurrent kernel, bias). fastgru therefore loads the first as the second: the cell's options (units,
activations, initializers, dropouts, ``reset_after``, ...) joined with the RNN's own (return_sequences,
return_state, go_backwards, stateful, unroll, zero_output_for_mask), under the RNN layer's name. Saving
writes it back as that GRU, LSTM or SimpleRNN layer, which Keras loads to the same numbers.

Other cells are refused by name: ``StackedRNNCells`` (``RNN([cell, cell])``: stack recurrent layers instead),
Keras's ``ConvLSTM`` cells, and custom cell classes (their ``call`` is code, which a file cannot carry).
"""

from __future__ import annotations

from ..errors import ModelFileError, UnsupportedKerasFeature
from .config_checks import _trainable
from .keras_graph import _entry

#: Keras cell class -> the recurrent layer that loops it
CELL_LAYERS = {"GRUCell": "GRU", "LSTMCell": "LSTM", "SimpleRNNCell": "SimpleRNN"}
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
        hint = ("stack GRU/LSTM/SimpleRNN layers, return_sequences=True on all but the last, for the same model"
                if cell_cls == "StackedRNNCells" else
                f"fastgru's RNN runs one of {', '.join(CELL_LAYERS)}; a custom cell's code cannot be loaded")
        raise UnsupportedKerasFeature(f"layer {label}: RNN({cell_cls}) is not supported ({hint})")
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
