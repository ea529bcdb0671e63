"""The few ``keras.backend`` functions that model-building scripts call: ``clear_session`` (fresh automatic layer
names, as after Keras's), ``floatx``, ``epsilon`` and ``image_data_format`` (fastgru's fixed answers)."""

from __future__ import annotations

from .layers.base import _name_counts
from .training.optimizer_base import _NAME_UIDS

__all__ = ["clear_session", "epsilon", "floatx", "image_data_format"]


def clear_session(free_memory: bool = True) -> None:
    """Start automatic layer and optimizer names afresh (the next ``GRU`` is ``gru`` again, the next ``Adam``
    ``adam``), as Keras's ``clear_session``. Models already built keep their layers and names; fastgru holds no
    other global graph state."""
    _name_counts.clear()
    _NAME_UIDS.clear()


def floatx() -> str:
    """``"float32"``: the dtype layers compute in unless given float64 inputs or a float64 dtype."""
    return "float32"


def epsilon() -> float:
    """Keras's fuzz factor, 1e-7 (the clipping of crossentropies, the optimizers' default epsilons)."""
    return 1e-7


def image_data_format() -> str:
    """``"channels_last"``, Keras's default (each layer takes its own ``data_format``)."""
    return "channels_last"
