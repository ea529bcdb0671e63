"""Keras's ``SwapEMAWeights`` callback: the optimizer's moving averages of the weights (``use_ema=True``) put
in the model while it is evaluated, and swapped back after."""

from __future__ import annotations

from .callback_base import Callback


class SwapEMAWeights(Callback):
    """Swap the model's trainable weights with the optimizer's moving averages (``use_ema=True``) before
    evaluation (``fit``'s validation, ``evaluate``, ``predict``) and back after it, in place, as Keras 3's.

    ``swap_on_epoch=True`` also swaps at each epoch's end and back at the next one's start, so that callbacks
    after this one (``ModelCheckpoint``) see the averages; at the last epoch's end the averages are kept for
    ``fit``'s final write of them into the weights.
    """

    def __init__(self, swap_on_epoch: bool = False):
        super().__init__()
        self.swap_on_epoch = bool(swap_on_epoch)
        self._ema_weights_in_model = False

    def _optimizer(self):
        optimizer = getattr(self.model, "optimizer", None)
        optimizer = getattr(optimizer, "inner_optimizer", optimizer)  # (a LossScaleOptimizer's)
        if not getattr(optimizer, "use_ema", False):
            raise ValueError("SwapEMAWeights needs an optimizer with use_ema=True (it swaps the weights with the "
                             f"optimizer's moving averages); the model's optimizer is {optimizer!r}")
        return optimizer

    def _swap(self) -> None:
        for weight, average in zip(self.model.trainable_weights, self._optimizer()._averages):
            held = weight.copy()
            weight[...] = average
            average[...] = held

    def _swap_in(self) -> None:
        if not self._ema_weights_in_model:
            self._swap()
            self._ema_weights_in_model = True

    def _swap_out(self) -> None:
        if self._ema_weights_in_model:
            self._swap()
            self._ema_weights_in_model = False

    def on_epoch_begin(self, epoch, logs=None):
        if self.swap_on_epoch:
            self._swap_out()

    def on_epoch_end(self, epoch, logs=None):
        if self.swap_on_epoch and not self._ema_weights_in_model:
            self._swap_in()
            if epoch == self.params.get("epochs", 0) - 1:  # (fit then writes the averages into the weights)
                for weight, average in zip(self.model.trainable_weights, self._optimizer()._averages):
                    average[...] = weight

    def on_test_begin(self, logs=None):
        self._swap_in()

    def on_test_end(self, logs=None):
        self._swap_out()

    def on_predict_begin(self, logs=None):
        self._swap_in()

    def on_predict_end(self, logs=None):
        self._swap_out()
