"""The base of fastgru's metrics, :class:`Metric` (Keras's ``update_state``/``result``/``reset_state``), shared
by :mod:`fastgru.training.metrics` (which exports it and finds metrics by name) and
:mod:`fastgru.training.auc`."""

from __future__ import annotations

import numpy as np


class Metric:
    """Base class: ``update_state(y_true, y_pred, sample_weight=None)``, ``result()``, ``reset_state()``."""

    #: "up" when larger is better, "down" when smaller is better, None when unknown (as Keras)
    _direction: str | None = None

    def __init__(self, name: str | None = None, dtype=np.float32):
        self.name = name or type(self).__name__
        self.dtype = np.dtype(dtype)
        self.reset_state()

    def reset_state(self) -> None:
        raise NotImplementedError

    def update_state(self, *args, **kwargs) -> None:
        raise NotImplementedError

    def result(self) -> float:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype.name}

    @classmethod
    def from_config(cls, config: dict) -> Metric:
        """The metric of a ``get_config()`` dict (or of Keras's config of the same class)."""
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} result={self.result():.6g}>"
