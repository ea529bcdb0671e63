"""Keras's ``layer.cell`` of a recurrent layer (``gru.cell.kernel``, ``lstm.cell.units``): a view of the step's
weights and options that reads them from the layer itself, so that code written for Keras's cells works.

fastgru's kernels run whole sequences, so the cell is not a layer of its own: it has no call, and its weights are
the layer's arrays (changing one changes the other; ``set_weights`` goes through the layer's checks).
"""

from __future__ import annotations

from typing import Any

#: the layer options that are the sequence loop's, not the cell's (Keras's cells do not have them)
_LOOP_OPTIONS = frozenset({"return_sequences", "return_state", "go_backwards", "stateful", "unroll",
                           "zero_output_for_mask", "states", "reset_states", "input", "output", "cell"})


class RecurrentCell:
    """The cell of a ``GRU``/``LSTM``/``SimpleRNN`` layer: ``kernel`` (D, G·H), ``recurrent_kernel`` (H, G·H),
    ``bias``, ``units``, the step's activations and dropout rates, ``state_size`` and ``output_size``, the
    weights (``weights``, ``get_weights``, ``set_weights``) — all the layer's own."""

    def __init__(self, layer) -> None:
        self.__dict__["_layer"] = layer

    @property
    def name(self) -> str:
        return f"{type(self._layer).__name__.lower()}_cell"

    @property
    def state_size(self):
        """``units`` (GRU, SimpleRNN) or ``[units, units]`` (LSTM's h and c), as Keras's cells."""
        states = len(self._layer.state_names)
        return self._layer.units if states == 1 else [self._layer.units] * states

    @property
    def output_size(self) -> int:
        return self._layer.units

    def __getattr__(self, name: str) -> Any:
        if name in _LOOP_OPTIONS or name.startswith("__"):
            raise AttributeError(f"{type(self._layer).__name__} cell has no attribute {name!r} (the layer has)")
        return getattr(self._layer, name)

    def __setattr__(self, name: str, value) -> None:
        raise AttributeError(f"the cell's attributes are its layer's: set {name!r} on the layer "
                             f"{self._layer.name!r} (or its weights with set_weights)")

    def __repr__(self) -> str:
        return f"<{type(self._layer).__name__}Cell of {self._layer.name!r} units={self._layer.units}>"
