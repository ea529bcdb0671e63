"""A ``Dense`` or ``Embedding`` that Keras fine-tuned with LoRA (``lora_rank`` in its config), as Keras's
``load_model`` gives it back: its file holds the kernel Keras computes with (the frozen kernel plus the scaled
low-rank product, merged) and Keras's loading restarts both factors at zero, where their gradients stay zero
(each factor's gradient is a product with the other). So the merged kernel computes as Keras, stays frozen
in training (only the bias trains), and ``lora_rank``/``lora_alpha`` are written back to the config, so that
Keras's model of a fastgru file is a LoRA layer too. LoRA in code (fresh factors, which do train) is not
supported."""

from __future__ import annotations

import numpy as np

from ..errors import ModelFileError


class LoraFrozen:
    """Mixin: ``lora_rank`` set by the file loader (:meth:`take_lora`) freezes ``lora_weight``."""

    lora_rank: int | None = None
    lora_alpha: float | None = None
    lora_weight = "kernel"

    def take_lora(self, rank, alpha, path) -> None:
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise ModelFileError(path, f"layer {self.name!r}: lora_rank must be a positive integer, found {rank!r}")
        if alpha is not None and (isinstance(alpha, bool) or not isinstance(alpha, (int, float))):
            raise ModelFileError(path, f"layer {self.name!r}: lora_alpha must be a number, found {alpha!r}")
        self.lora_rank, self.lora_alpha = rank, alpha

    @property
    def trainable_weights(self) -> list[np.ndarray]:
        if not self.trainable:
            return []
        return [w for n, w in zip(self.weight_paths, self.weights) if not (self.lora_rank and n == self.lora_weight)]

    def lora_trainable(self, grads: list) -> list:
        """``grads`` (aligned with every weight) without the frozen one's."""
        if not self.lora_rank:
            return grads
        return [g for n, g in zip(self.weight_paths, grads) if n != self.lora_weight]

    def lora_config(self) -> dict:
        return {} if not self.lora_rank else {"lora_rank": self.lora_rank, "lora_alpha": self.lora_alpha or
                                              self.lora_rank}
