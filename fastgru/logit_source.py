"""Where a model output's logits are, as Keras finds them: TensorFlow tags the output of a sigmoid or softmax with
its input (``_keras_logits``) and a crossentropy reads those logits instead of the clipped probabilities. The tag
stays on the tensor through layers that return their input itself — ``Identity``, a
linear ``Activation``, the dropout and noise layers when they do not train (or drop nothing), ``ops.cast`` of a
float32 model's tensor to float32 — and through a nested model, whose output is its last layer's tensor.

:func:`graph_logits` follows a Functional model's output back to the layer that makes it (its activation and its
output's slot, the one the training walk asks for the pre-activation: ``plan_walk.forward``), :func:`chain_logits`
a chain of layers (a ``Sequential``); :func:`layer_activation` says which activation a layer's output tags.
"""

from __future__ import annotations

_IDENTITY = frozenset({"Identity"})  # (not ActivityRegularization: its penalty reads the probabilities)
#: layers that return their input unchanged when they do not train (or with a rate of 0)
_NOISE = {"Dropout": "rate", "SpatialDropout1D": "rate", "SpatialDropout2D": "rate", "SpatialDropout3D": "rate",
          "GaussianDropout": "rate", "AlphaDropout": "rate", "GaussianNoise": "stddev"}
_TAGGING = ("sigmoid", "softmax")


def passes_through(layer, training: bool) -> bool:
    """Whether ``layer`` returns its input tensor itself (the logits tag stays on it)."""
    kind = type(layer).__name__
    if kind in _IDENTITY:
        return True
    if kind == "Activation":
        return getattr(layer, "activation", None) in (None, "linear")
    if kind in _NOISE:
        return not training or not getattr(layer, _NOISE[kind], 0)
    if kind == "KerasOp" and layer.op == "Cast":  # (TensorFlow's cast to the dtype a tensor has returns the tensor)
        return (getattr(layer, "op_config", None) or {}).get("dtype") == "float32"
    return False


def layer_activation(layer, training: bool) -> str | None:
    """"sigmoid"/"softmax" when ``layer``'s output is tagged with its logits (a Dense or Activation of one, a
    sigmoid/softmax op or layer, a custom layer's traced call ending in one, a nested model's output), else None."""
    if getattr(layer, "_keras_time_distributed", None) is not None:
        return None  # (a Dense loaded from Keras's TimeDistributed: its output, reshaped by Keras, tags no logits)
    kind = type(layer).__name__
    if kind in ("Dense", "Activation"):
        act = getattr(layer, "activation", None)
    elif getattr(layer, "_fg_model", False):
        act = graph_logits(layer, 0, training)[0] if len(layer._outputs) == 1 else None
    elif kind == "Sequential":
        act = chain_logits(layer._layers, training)[0] if layer._layers else None
    else:
        act = getattr(layer, "logits_activation", None)
    return act if act in _TAGGING else None


def chain_logits(layers: list, training: bool) -> tuple[str | None, int]:
    """(activation, index of the layer making the logits) of a chain's output."""
    i = len(layers) - 1
    while i > 0 and passes_through(layers[i], training):
        i -= 1
    return layer_activation(layers[i], training), i


def graph_logits(model, k: int, training: bool) -> tuple[str | None, int]:
    """(activation, slot of the tensor whose producer returns its logits) of a Functional model's output ``k``."""
    slot = model._output_slots[k]
    producers = {s: step for step in model._steps for s in step.outs}
    inputs, outputs = set(model._input_slots), model._output_slots
    step = producers.get(slot)
    while step is not None and step.kind == "layer" and passes_through(step.layer, training) and \
            len(step.args) == 1 and (not step.list_args or type(step.layer).__name__ == "KerasOp") and \
            not step.states:
        source = step.args[0]
        if source in inputs or source in outputs or model._consumers.get(source, 0) != 1 or source not in producers:
            break
        slot, step = source, producers[source]
    if step is None or len(step.outs) != 1:
        return None, slot
    return layer_activation(step.layer, training), slot
