"""Keras's ``RNN(cell)`` spelling of the recurrent layers: ``RNN(GRUCell(64), return_sequences=True)`` is
``GRU(64, return_sequences=True)``, as in Keras, where both loop the same cell (and a file holds the
cell's weights at the same place). The cells here hold a step's options; ``RNN`` builds the layer.

Cells are not stepped one call at a time (fastgru's kernels run whole sequences). A list of cells (Keras's
``StackedRNNCells``: each step's output of one cell is the next cell's input) is the stack of their layers, each
but the last returning its sequence, in a Sequential named as the RNN — what a file's ``RNN([...])`` loads as.
"""

from __future__ import annotations

from . import registry
from .base import unique_name
from .cell_rnn import RNN as CellRNN
from .cell_rnn import is_cell
from .gru import GRU
from .lstm import LSTM
from .simple_rnn import SimpleRNN


class _Cell:
    """The options of one recurrent step (units and the cell options of the matching layer)."""

    layer_class: type

    def __init__(self, units: int, **options) -> None:
        options.pop("name", None)  # (the cell's own name: Keras's layer is named by the RNN)
        try:  # the options checked now, by the layer they will make (named and seeded: no automatic name and no
            # draw from the global generator is used up)
            self.layer_class(units, name="cell_options_check", **{"seed": 0, **options})
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{type(self).__name__}: {exc}") from None
        self.units = units
        self.options = options

    def get_config(self) -> dict:
        return {"units": self.units, **self.options}

    @classmethod
    def from_config(cls, config: dict):
        """A cell from its config (fastgru's, or a Keras cell's ``get_config()``: its layer's options)."""
        config = dict(config)
        for key in ("trainable", "dtype"):  # (the RNN layer's own)
            config.pop(key, None)
        return cls(**registry.without_fixed_options(cls.layer_class, config))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(units={self.units})"


class GRUCell(_Cell):
    """One GRU step's options (``keras.layers.GRUCell``: activation, recurrent_activation, use_bias,
    initializers, regularizers, dropout, recurrent_dropout, reset_after, seed), for :func:`RNN`."""

    layer_class = GRU


class LSTMCell(_Cell):
    """One LSTM step's options (``keras.layers.LSTMCell``, with unit_forget_bias), for :func:`RNN`."""

    layer_class = LSTM


class SimpleRNNCell(_Cell):
    """One SimpleRNN step's options (``keras.layers.SimpleRNNCell``), for :func:`RNN`."""

    layer_class = SimpleRNN


class _RNNType(type):
    """``RNN(cell, ...)`` builds the layer looping the cell (:func:`_looping`); ``isinstance(layer, RNN)`` holds for
    the recurrent layers, as Keras's GRU, LSTM and SimpleRNN are RNNs."""

    def __call__(cls, cell, *args, **kwargs):
        return _looping(cell, *args, **kwargs)

    def __instancecheck__(cls, obj) -> bool:
        obj = obj.__dict__.get("_as_sequential") or obj if hasattr(obj, "__dict__") else obj
        return isinstance(obj, (GRU, LSTM, SimpleRNN, CellRNN)) or bool(getattr(obj, "_fg_stacked_cells", False))


class RNN(metaclass=_RNNType):
    """Keras's ``RNN(cell, return_sequences=False, return_state=False, go_backwards=False, stateful=False,
    unroll=False, zero_output_for_mask=False, **kwargs)``: the recurrent layer that loops ``cell`` over the steps
    of a (batch, steps, features) input — ``RNN(GRUCell(64))`` is a :class:`GRU` (likewise LSTM and SimpleRNN), a
    script's own cell is looped step by step (``layers/cell_rnn.py``), a list of cells is the stack of their
    layers. Each layer's ``get_initial_state(batch_size)`` gives Keras's initial states: zeros, or what a script's
    cell's own ``get_initial_state`` returns."""

    @classmethod
    def from_config(cls, config: dict):
        """The layer of a config (Keras's ``RNN`` config, or a looped cell's ``get_config``): its cell from the
        cell's entry — fastgru's cells, or a script's cell class given in ``custom_objects`` or registered."""
        config = dict(config)
        entry = config.pop("cell", None)
        cells = [_cell_of(e) for e in entry] if isinstance(entry, list) else _cell_of(entry)
        return _looping(cells, **{k: v for k, v in config.items() if k not in ("batch_input_shape",)})


def _cell_of(entry):
    """A cell object from its serialized entry (``{"class_name": ..., "config": ...}``), or the object given."""
    if not isinstance(entry, dict):
        return entry
    name, config = entry.get("class_name"), entry.get("config")
    if name == "StackedRNNCells" and isinstance(config, dict):
        return [_cell_of(e) for e in config.get("cells") or []]
    own = {"GRUCell": GRUCell, "LSTMCell": LSTMCell, "SimpleRNNCell": SimpleRNNCell}.get(name)
    found = own or registry.custom_layer(entry.get("registered_name") or name) or registry.custom_layer(name)
    if found is None or not isinstance(config, dict):
        raise ValueError(f"RNN.from_config: cell {name!r} is neither a fastgru cell nor a script's cell class given "
                         "in custom_objects (or registered)")
    return found.from_config(dict(config))


def _looping(  # noqa: N802 (Keras's name)
    cell: _Cell,
    return_sequences: bool = False,
    return_state: bool = False,
    go_backwards: bool = False,
    stateful: bool = False,
    unroll: bool = False,
    zero_output_for_mask: bool = False,
    **kwargs,
):
    """The recurrent layer that loops ``cell`` over the steps of a (batch, steps, features) input:
    ``RNN(GRUCell(64))`` is a :class:`GRU` (likewise LSTM and SimpleRNN), with the RNN's options
    (``return_sequences``, ``return_state``, ``go_backwards``, ``stateful``, ``unroll``,
    ``zero_output_for_mask``, ``name``, ...)."""
    if isinstance(cell, (list, tuple)):
        return _stacked(list(cell), return_sequences, return_state, go_backwards, stateful=stateful, unroll=unroll,
                        zero_output_for_mask=zero_output_for_mask, **kwargs)
    if is_cell(cell):  # (a script's own cell: looped step by step, cell_rnn.py)
        return CellRNN(cell, return_sequences=return_sequences, return_state=return_state, go_backwards=go_backwards,
                       stateful=stateful, unroll=unroll, zero_output_for_mask=zero_output_for_mask, **kwargs)
    if not isinstance(cell, _Cell):
        raise TypeError(f"RNN's cell should be a fastgru GRUCell, LSTMCell or SimpleRNNCell, or a Layer subclass "
                        f"with state_size and call(inputs, states), found {type(cell).__name__}")
    kwargs.setdefault("name", unique_name("rnn"))  # (Keras's RNN layer is named "rnn", not after its cell)
    return cell.layer_class(cell.units, **cell.options, return_sequences=return_sequences, return_state=return_state,
                            go_backwards=go_backwards, stateful=stateful, unroll=unroll,
                            zero_output_for_mask=zero_output_for_mask, **kwargs)


def _stacked(cells: list, return_sequences: bool, return_state: bool, go_backwards: bool, **options):
    """``RNN([cell, ...])``: a Sequential of the cells' layers (see the module docstring)."""
    if not cells or not all(isinstance(c, _Cell) for c in cells):
        raise TypeError("RNN over a list of cells takes fastgru GRUCell, LSTMCell or SimpleRNNCell objects, found "
                        f"{[type(c).__name__ for c in cells]}")
    for flag, value in (("return_state", return_state), ("go_backwards", go_backwards)):
        if value:  # (states: every cell's; backwards: the layers after the first would see the mask unreversed)
            raise ValueError(f"RNN over a list of cells with {flag}=True is not supported: stack GRU/LSTM/SimpleRNN "
                             "layers (return_sequences=True on all but the last), each with its own option")
    name = options.pop("name", None) or unique_name("rnn")
    layers = [c.layer_class(c.units, **c.options, **options, name=f"{name}_cell_{i}", return_sequences=True)
              for i, c in enumerate(cells[:-1])]
    last = cells[-1]
    layers.append(last.layer_class(last.units, **last.options, **options, name=f"{name}_cell_{len(cells) - 1}",
                                   return_sequences=return_sequences))
    stack = registry.model_class("Sequential")(layers, name=name)
    stack._fg_stacked_cells = True  # (isinstance(stack, RNN))
    return stack
