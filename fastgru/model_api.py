"""Keras 3 model attributes and methods that training and serving code reaches for, shared by ``Sequential``
and the Functional ``Model``: the variable lists under Keras's names, the metrics' names and results, the
compile configuration and the architecture as JSON."""

from __future__ import annotations

import json


class KerasModelAPI:
    """Mixed into ``Sequential`` and ``Model`` (which define ``weights``, ``trainable_weights`` and ``metrics``)."""

    @property
    def non_trainable_weights(self) -> list:
        """The weights that training leaves alone (a frozen layer's, BatchNormalization's moving statistics)."""
        trainable = {id(w) for w in self.trainable_weights}
        return [w for w in self.weights if id(w) not in trainable]

    @property
    def variables(self) -> list:
        return self.weights

    @property
    def trainable_variables(self) -> list:
        return self.trainable_weights

    @property
    def non_trainable_variables(self) -> list:
        return self.non_trainable_weights

    @property
    def metrics_names(self) -> list[str]:
        """The names of ``model.metrics``: ``"loss"`` and the compiled metrics' (empty before compile)."""
        return [m.name for m in self.metrics]

    def reset_metrics(self) -> None:
        """Reset the loss tracker and every compiled metric (``fit``/``evaluate`` do it themselves)."""
        for m in self.metrics:
            m.reset_state()

    def get_metrics_result(self) -> dict:
        """The current value of the loss tracker and of each compiled metric, by logged name."""
        compiled = getattr(self, "_compiled", None)
        return {} if compiled is None else dict(compiled.logs())

    def get_compile_config(self) -> dict | None:
        """The compile configuration Keras 3 writes into a ``.keras`` file (None before compile)."""
        from .io.keras_save import keras3_compile_config

        return keras3_compile_config(self)

    def to_json(self, **kwargs) -> str:
        """The architecture as Keras 3's JSON (``keras.models.model_from_json`` reads it); ``kwargs`` go to
        ``json.dumps``. Weights are not included: ``save_weights``, or ``save`` for both."""
        from .io import functional_save, keras_functional, keras_save

        entry = (functional_save.functional_config(self) if keras_functional.uses_graph(self)
                 else keras_save.keras3_model_config(self))
        return json.dumps(entry, **kwargs)
