"""The output shapes of a model called as a layer on symbolic tensors (``graph.symbolic_call``) or asked for them
(``compute_output_shape``): a nested Sequential's layer by layer, a nested Functional model's node by node, the
sizes its call knows filled in where the model was built with open ones; and the shape rules the graph checks calls
with (``_compatible``) and names shapes by (``_fmt``)."""

from __future__ import annotations


def _fmt(shape) -> str:
    if isinstance(shape, list):
        return "[" + ", ".join(_fmt(s) for s in shape) + "]"
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _compatible(expected, received, feature_axes: int = 1) -> bool:
    """Same rank and last (feature) axis, as Keras's input specs check (``input_feature_axes`` -1: any rank from 2,
    a Dense's; 0: any shape, token ids); the others (time steps) may differ."""
    if len(expected) != len(received) and not (feature_axes == -1 and min(len(expected), len(received)) >= 2):
        return False
    if len(expected) < 2 or feature_axes == 0:
        return True
    a, b = expected[-1], received[-1]
    return a is None or b is None or a == b


def _kind(layer) -> str:
    return type(layer).__name__


class Shaped:
    """A stand-in for a tensor where only its shape is read."""

    __slots__ = ("shape",)

    def __init__(self, shape):
        self.shape = tuple(shape)


def nested_model_shapes(model, args: list, list_args: bool, label: str) -> list:
    """The output shapes of ``model`` called on ``args`` (anything with a ``shape``); its input shapes checked."""
    if _kind(model) == "Sequential":
        if list_args and len(args) != 1:
            raise ValueError(f"{label} takes one input, received {len(args)}")
        shape = args[0].shape
        if not model.built:
            model.build(shape)
        elif not _compatible(model.input_shape, shape):
            raise ValueError(f"{label} expects input shape {_fmt(model.input_shape)}, received {_fmt(shape)}")
        out = model.output_shape
        if tuple(model.input_shape) != tuple(shape):  # (built with open sizes, called on known ones: tf_keras's
            try:  # nested Sequential without an input shape) the call's own output shape, layer by layer
                known = tuple(shape)
                for layer in model._layers_and_ops:
                    known = tuple(layer.compute_output_shape(known))
                out = known
            except (AttributeError, TypeError, ValueError):
                pass
        return [tuple(s) for s in out] if isinstance(out, list) else [tuple(out)]
    expected = [t.shape for t in model._inputs]
    if len(args) != len(expected):
        raise ValueError(f"{label} takes {len(expected)} input(s), received {len(args)}")
    for name, e, a in zip(model.input_names, expected, args):
        if not _compatible(e, a.shape):
            raise ValueError(f"{label}: input {name!r} expects shape {_fmt(e)}, received {_fmt(a.shape)}")
    recorded = [t.shape for t in model._outputs]
    if all(tuple(e) == tuple(a.shape) for e, a in zip(expected, args)):
        return recorded
    try:
        return called_shapes(model, [tuple(a.shape) for a in args])
    except (AttributeError, IndexError, KeyError, TypeError, ValueError):
        return recorded  # (a layer that cannot say: the sizes the model was built with)


def called_shapes(model, shapes: list) -> list:
    """A nested Functional model's output shapes when called on inputs of ``shapes``: each of its calls' output shape
    from its inputs' (the layer's ``compute_output_shape``), the recorded one's sizes where the call leaves a size
    open. A model built on ``Input((None, 4))`` and called on a (batch, 7, 4) tensor gives (batch, 7, ...) as
    Keras's symbolic call does, for the layers after it that need the size."""
    known = {id(t): tuple(s) for t, s in zip(model._inputs, shapes)}
    for node in model._nodes:
        if node.is_input or not any(id(t) in known for t in node.args):
            continue
        ins = [known.get(id(t), tuple(t.shape)) for t in node.args]
        layer = node.layer
        if getattr(layer, "_fg_model", False) or _kind(layer) == "Sequential":
            label = f"{_kind(layer)} {layer.name!r}"
            outs = nested_model_shapes(layer, [Shaped(s) for s in ins], node.list_args, label)
        else:
            in_shape = list(ins) if node.list_args else ins[0]
            if hasattr(layer, "node_input_shapes"):
                in_shape = layer.node_input_shapes(in_shape, node.call_kwargs)
            out = layer.compute_output_shape(in_shape, **node.call_kwargs)
            outs = list(out) if isinstance(out, (list, tuple)) and out and all(
                isinstance(o, (list, tuple)) for o in out) else [out]
        for tensor, shape in zip(node.outputs, outs):
            shape = tuple(shape)
            if len(shape) == len(tensor.shape):
                known[id(tensor)] = tuple(r if c is None else c for c, r in zip(shape, tensor.shape))
    return [known.get(id(t), tuple(t.shape)) for t in model._outputs]
