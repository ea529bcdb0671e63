"""What an optimizer hands out for its rate and step count, so that Keras's and tf_keras's callbacks can use
them as they use their own variables: ``optimizer.learning_rate`` (:class:`LearningRate`, a float with
``.numpy()`` and ``.assign()``), ``optimizer.iterations`` (:class:`StepCount`, an int likewise) and tf_keras's
``optimizer.lr`` (:class:`_RateHandle`, a float32 0-d array with ``.assign()``)."""

from __future__ import annotations

import numpy as np


class _RateHandle(np.ndarray):
    """``optimizer.lr`` for tf_keras's callbacks: the rate now, as a float32 0-d array (logged as it was), whose
    ``assign(value)`` sets the optimizer's ``learning_rate``."""

    _optimizer = None

    def assign(self, value) -> None:
        self._optimizer.learning_rate = float(np.asarray(value))


class LearningRate(float):
    """``optimizer.learning_rate``: the rate now, a float that also answers Keras's variable calls a callback may
    make (``.numpy()``, float32 as Keras's variable; ``.assign(value)``, which sets the optimizer's rate)."""

    __slots__ = ("_optimizer",)

    def __new__(cls, value, optimizer):
        rate = super().__new__(cls, value)
        rate._optimizer = optimizer
        return rate

    def numpy(self) -> np.float32:
        return np.float32(self)

    def assign(self, value) -> None:
        self._optimizer.learning_rate = float(np.asarray(value))

    def __reduce__(self):  # (pickled as the plain number)
        return float, (float(self),)


class StepCount(int):
    """``optimizer.iterations``: the updates so far, an int that also answers Keras's ``.numpy()`` and
    ``.assign(value)``."""

    def __new__(cls, value, optimizer):
        count = super().__new__(cls, value)
        count._optimizer = optimizer
        return count

    def numpy(self) -> np.int64:
        return np.int64(self)

    def assign(self, value) -> None:
        self._optimizer.iterations = int(np.asarray(value))

    def __reduce__(self):
        return int, (int(self),)
