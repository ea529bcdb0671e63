"""The states a recurrent layer carries between calls (``stateful=True``): Keras's ``states``,
``reset_states``/``reset_state`` and the lock a stateful call holds (mixed into ``recurrent.RecurrentLayer``, whose
``state_names``, ``units``, ``stateful`` and ``_states`` these read)."""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np

from .._threads import held_or_refused


def checked_batch_size(batch_size, layer) -> int:
    """``get_initial_state``'s batch size: a whole number, 0 or more."""
    if isinstance(batch_size, (bool, np.bool_)) or not isinstance(batch_size, (int, np.integer)) or batch_size < 0:
        raise ValueError(f"{type(layer).__name__} {layer.name!r}: get_initial_state(batch_size) takes a whole number "
                         f"0 or more, received {batch_size!r}")
    return int(batch_size)


class CarriedStates:
    """A recurrent layer's carried states (see the module docstring)."""

    def reset_states(self, states=None) -> None:
        """Forget the carried states of a ``stateful`` layer, or set them: ``states`` one (B, H) array
        per state (a bare array is accepted for a one-state layer)."""
        if states is None:
            self._states = None
            return
        if not self.stateful:  # (they would be ignored: only a stateful layer carries states between calls)
            raise ValueError(f"{type(self).__name__} {self.name!r} is not stateful: reset_states(states) sets the "
                             "states a stateful layer carries; pass initial_state= to a call instead")
        self._states = self._checked_states(states)

    def get_initial_state(self, batch_size: int) -> list[np.ndarray]:
        """Keras's initial states: one (batch_size, units) array of zeros per state, in the layer's dtype."""
        return [np.zeros((checked_batch_size(batch_size, self), self.units), self.dtype) for _ in self.state_names]

    def reset_state(self) -> None:
        """Keras 3's name of :meth:`reset_states` (without states: forget them)."""
        self.reset_states()

    def _checked_states(self, states) -> list[np.ndarray]:
        """``reset_states``'s argument checked (one (B, H) real array per state, all of one batch size)
        and copied in the layer's dtype; nothing is set when one is refused."""
        kind = type(self).__name__
        if isinstance(states, np.ndarray) or not isinstance(states, (list, tuple)):
            states = [states]
        if len(states) != len(self.state_names):
            raise ValueError(f"{kind} {self.name!r} has {len(self.state_names)} states, received {len(states)}")
        checked = []
        for name, s in zip(self.state_names, states):
            s = np.asarray(s)
            if s.dtype.kind not in "fiub":
                raise TypeError(f"{kind} {self.name!r} state {name!r} must be a real numeric array, "
                                f"received dtype {s.dtype}")
            first = checked[0].shape[0] if checked else None
            if s.ndim != 2 or s.shape[1] != self.units or (first is not None and s.shape[0] != first):
                expected = f"({'batch' if first is None else first}, {self.units})"
                raise ValueError(f"{kind} {self.name!r} state {name!r} must have shape {expected}, "
                                 f"received shape {s.shape}")
            checked.append(np.array(s, dtype=self.dtype))
        return checked

    @property
    def states(self) -> list[np.ndarray] | None:
        """The carried states of a stateful layer (list of (B, H) arrays; zeros before its first call and after
        ``reset_states()``, as Keras's, where its batch size is fixed), or None."""
        if self._states is None and self.stateful and self.built and self.input_shape and self.input_shape[0]:
            return [np.zeros((self.input_shape[0], self.units), self.dtype) for _ in self.state_names]
        return self._states

    def _exclusive(self):
        """A stateful layer's call owns its carried states: overlapping calls raise."""
        if not self.stateful:
            return nullcontext()
        return held_or_refused(
            self._state_lock,
            f"stateful {type(self).__name__} {self.name!r} is already running in another thread: a stateful "
            "layer carries its states between calls, so its calls must not overlap (use one model per thread)",
        )
