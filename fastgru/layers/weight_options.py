"""The weight options every layer takes (Keras's ``kernel_regularizer``, ``activity_regularizer``,
``kernel_constraint``, ...): taken from the constructor's arguments and written back into its config. A mixin of
``fastgru.layers.base.Layer``."""

from __future__ import annotations


class WeightOptions:
    """``_take_regularizers`` (from ``__init__``'s keyword arguments), ``_regularizer_config`` (``get_config``'s)."""

    # ---- regularizers (fastgru.regularizers) ------------------------------------------------------
    def _take_regularizers(self, kwargs: dict) -> None:
        """Pop ``activity_regularizer`` and this class's ``regularizer_options`` from ``kwargs`` into
        ``self.activity_regularizer`` and ``self.weight_regularizers`` (weight name -> regularizer)."""
        from .. import regularizers

        options = {"activity_regularizer": None, **type(self).regularizer_options}
        taken = {}
        for option in options:
            value = kwargs.pop(option, None)
            if value is not None:
                try:
                    taken[option] = regularizers.get(value)
                except (TypeError, ValueError) as exc:
                    raise type(exc)(f"{type(self).__name__}: option {option!r}: {exc}") from None
        self.activity_regularizer = taken.pop("activity_regularizer", None)
        self._regularizer_options = taken
        self.weight_regularizers = {options[o]: r for o, r in taken.items()}
        self._take_constraints(kwargs)

    def _take_constraints(self, kwargs: dict) -> None:
        """Pop the weight constraints (``kernel_constraint`` for a ``kernel_regularizer`` weight, ...) into
        ``self.weight_constraints`` (weight name -> fastgru.constraints object, applied after each
        optimizer step by fastgru.training.regularization)."""
        from .. import constraints
        from .registry import constraint_options

        self._constraint_options = {}
        self.weight_constraints = {}
        for name, weight in constraint_options(type(self)).items():
            value = kwargs.pop(name, None)
            if value is not None:
                try:
                    self._constraint_options[name] = self.weight_constraints[weight] = constraints.get(value)
                except (TypeError, ValueError) as exc:
                    raise type(exc)(f"{type(self).__name__}: option {name!r}: {exc}") from None

    #: whether Keras's config of this class lists ``activity_regularizer`` when it is None (its recurrent,
    #: convolution, embedding and attention layers do; Dense, the normalizations and PReLU only when one is set)
    config_lists_activity_regularizer = True

    def _regularizer_config(self) -> dict:
        """The regularizer and constraint options, each weight's listed as None where none is set (as Keras's
        configs list them: ``config["kernel_regularizer"]`` reads None, not a KeyError)."""
        from .. import constraints, regularizers
        from .registry import constraint_options

        config = {}
        activity = getattr(self, "activity_regularizer", None)
        options = type(self).regularizer_options
        if activity is not None or (options and type(self).config_lists_activity_regularizer):
            config["activity_regularizer"] = None if activity is None else regularizers.serialize(activity)
        taken = getattr(self, "_regularizer_options", {})
        for option in options:
            config[option] = regularizers.serialize(taken[option]) if option in taken else None
        taken = getattr(self, "_constraint_options", {})
        for option in constraint_options(type(self)):
            config[option] = constraints.serialize(taken[option]) if option in taken else None
        return config
