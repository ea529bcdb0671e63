"""A custom layer called on several tensors given to its call's own parameters — ``attention(query, values)``,
``layer(x, context=c)``, as Keras 3 takes them — runs as a layer of a list input: the tensors after the first join
the input list, the names of the parameters they go to kept in the node's call options (:data:`TENSORS_KEY`), and
its call gets them back under those names (with their masks as ``<name>_mask`` where it takes one, as Keras
passes them). A file's node with several positional tensors, or tensors as keywords, loads so (``io.keras_nodes``)
and is written back with the tensors as keywords."""

from __future__ import annotations

import inspect

from .errors import UnsupportedKerasFeature

#: a node's call option: the parameters of a custom layer's call that the input list's other tensors go to
TENSORS_KEY = "__tensor_arguments__"


def _symbolic(value) -> bool:
    return bool(getattr(value, "_fg_symbolic", False))


def gathered(layer, inputs, kwargs: dict) -> tuple:
    """(inputs, kwargs) of a call on symbolic tensors: the tensors given to other parameters joined to ``inputs``
    as a list, their names under :data:`TENSORS_KEY`."""
    names = [k for k, v in kwargs.items() if _symbolic(v) and k != "mask"]  # (mask=: the input's own, as given)
    if not names:
        return inputs, kwargs
    if isinstance(inputs, (list, tuple)):
        raise UnsupportedKerasFeature(f"custom layer {layer.name!r}: called on a list of tensors and on tensors given "
                                      f"to {names} too (give them all in the list, or each to its parameter)")
    rest = {k: v for k, v in kwargs.items() if k not in names}
    return [inputs] + [kwargs[n] for n in names], {**rest, TENSORS_KEY: tuple(names)}


def unpacked(parameters, inputs, mask, kwargs: dict) -> tuple:
    """(first input, None, kwargs with the other tensors, and each tensor's mask as ``<name>_mask`` where the call
    takes one) of a call whose input list came from :func:`gathered` — Keras passes no ``mask=`` to a call given
    several tensors; as given without :data:`TENSORS_KEY`."""
    names = kwargs.pop(TENSORS_KEY, None)
    if not names:
        return inputs, mask, kwargs
    masks = list(mask) if isinstance(mask, (list, tuple)) else [mask] + [None] * len(names)
    kwargs.update(zip(names, inputs[1:]))
    for name, m in zip([list(parameters)[1], *names], masks):
        if f"{name}_mask" in parameters and m is not None:
            kwargs[f"{name}_mask"] = m
    return inputs[0], None, kwargs


def positional_names(call, count: int) -> list[str]:
    """The parameters of ``call`` (a class's own) that ``count`` tensors given after its input bind to, as Keras
    binds them."""
    names = [p.name for p in list(inspect.signature(call).parameters.values())[2:]
             if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    if len(names) < count:
        raise UnsupportedKerasFeature(f"{call.__qualname__} takes {len(names)} argument(s) after its input, not the "
                                      f"{count} tensor(s) the file gives it")
    return names[:count]
