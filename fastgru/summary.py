"""Keras-style ``model.summary()`` table."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def printable(text: str) -> str:
    """``text`` with every character a terminal would act on or cannot show (controls such as ESC and newline, line
    and paragraph separators, bidirectional and other format characters, lone surrogates) written as its Python
    escape: a name from a hostile file cannot forge lines or send escape sequences."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def _format_shape(shape) -> str:
    if isinstance(shape, list):
        return "[" + ", ".join(_format_shape(s) for s in shape) + "]"
    return "(" + ", ".join("None" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _format_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} GB"


def _trainable_cell(layer) -> str:
    """Keras's Trainable column: Y or N for a layer with weights, - for one without."""
    return ("Y" if layer.trainable else "N") if layer.weights else "-"


def _rows_of(model, layers, expand_nested: bool, show_trainable: bool, row_of) -> list[tuple]:
    """One row per layer (``row_of(layer, prefix)``), a nested model's layers below its own with
    ``expand_nested``, and the Trainable cell last with ``show_trainable``."""
    rows = []

    def add(layer, prefix):
        row = row_of(layer, prefix)
        rows.append(row + ((_trainable_cell(layer),) if show_trainable else ()))
        if expand_nested and (getattr(layer, "_fg_model", False) or type(layer).__name__ == "Sequential"):
            for inner in (l for l in layer._layers_and_ops if type(l).__name__ != "InputLayer"):
                add(inner, prefix + " └ ")

    for layer in layers:
        add(layer, "")
    return rows


def _in_range(layers, layer_range) -> list:
    """The layers from ``layer_range``'s first name to its last (Keras's ``layer_range``), or all."""
    if layer_range is None:
        return list(layers)
    first, last = layer_range
    names = [layer.name for layer in layers]
    if first not in names or last not in names:
        raise ValueError(f"layer_range {layer_range!r}: the model's layers are {names}")
    return list(layers)[names.index(first): names.index(last) + 1]


def _table(model, header: tuple, rows: list[tuple], widths: list[int], right: set, line_length) -> list[str]:
    """Keras's table: the header, a rule between rows, the totals (:func:`_param_lines`); names as
    :func:`printable` shows them."""
    rows = [tuple(printable(c) for c in row) for row in rows]
    if line_length:
        scale = line_length / (sum(widths) + len(widths) + 1)
        widths = [max(10, int(w * scale)) for w in widths]
    for row in rows:
        widths = [max(w, len(c) + 2) for w, c in zip(widths, row)]

    def line(left, mid, end, fill):
        return left + mid.join(fill * (w + 1) for w in widths) + end

    def cells(cols, sep):
        parts = [f"{c:>{w}} " if i in right else f" {c:<{w}}" for i, (c, w) in enumerate(zip(cols, widths))]
        return sep + sep.join(parts) + sep

    out = [f'Model: "{printable(model.name)}"', line("┏", "┳", "┓", "━"), cells(header, "┃"), line("┡", "╇", "┩", "━")]
    for i, row in enumerate(rows):
        out.append(cells(row, "│"))
        out.append(line("├", "┼", "┤", "─") if i < len(rows) - 1 else line("└", "┴", "┘", "─"))
    if not rows:
        out.append(line("└", "┴", "┘", "─"))
    return out + _param_lines(model)


def _param_lines(model) -> list[str]:
    """Keras's totals: the trainable and non-trainable weights, the optimizer's variables where Keras's optimizer
    would be built (after training, or in a model loaded compiled), their bytes by dtype."""
    trainable = {id(w): w for w in model.trainable_weights}
    frozen = [w for w in model.weights if id(w) not in trainable]
    counts = [(sum(w.size for w in trainable.values()), sum(w.nbytes for w in trainable.values())),
              (sum(w.size for w in frozen), sum(w.nbytes for w in frozen))]
    optimizer = _optimizer_params(model)
    total = [sum(c[i] for c in counts + ([optimizer] if optimizer else [])) for i in (0, 1)]
    lines = [f" Total params: {total[0]:,} ({_format_bytes(total[1])})",
             f" Trainable params: {counts[0][0]:,} ({_format_bytes(counts[0][1])})",
             f" Non-trainable params: {counts[1][0]:,} ({_format_bytes(counts[1][1])})"]
    if optimizer:
        lines.append(f" Optimizer params: {optimizer[0]:,} ({_format_bytes(optimizer[1])})")
    return lines


def _optimizer_params(model) -> tuple[int, int] | None:
    """(count, bytes) of the variables Keras's optimizer holds (``training.keras_slots.keras_variables``; for an
    optimizer of no known layout, its step count, rate and slots); None where Keras's would not be built yet."""
    from .training.keras_slots import keras_variables

    optimizer = getattr(getattr(model, "_compiled", None), "optimizer", None)
    if optimizer is None or not (optimizer.built or getattr(optimizer, "built_by_keras_load", False)):
        return None
    arrays = keras_variables(optimizer, model, as_loaded=True)
    if arrays is None:
        optimizer.bind_model(model)
        arrays = [np.int64(0), np.float32(0)] + [a for v in model.trainable_weights
                                                 for a in optimizer._build_slots(v).values()]
    return sum(np.size(a) for a in arrays), sum(np.asarray(a).nbytes for a in arrays)


def _params(layer) -> str:
    """A row's Param #: ``0 (unbuilt)`` for a layer not built yet, as Keras's summary shows it."""
    return f"{layer.count_params():,}" if getattr(layer, "built", True) else "0 (unbuilt)"


def summary_lines(model, line_length: int | None = None, expand_nested: bool = False, show_trainable: bool = False,
                  layer_range=None) -> list[str]:
    """The lines of the summary table of a built Sequential model."""
    def row_of(layer, prefix):
        shape = _format_shape(layer.output_shape) if layer.built else "?"
        return (f"{prefix}{layer.name} ({_class_name(layer)})", shape, _params(layer))

    rows = _rows_of(model, _in_range(model._layers_and_ops, layer_range), expand_nested, show_trainable, row_of)
    header = ("Layer (type)", "Output Shape", "Param #") + (("Trainable",) if show_trainable else ())
    widths = [33, 24, 15] + ([11] if show_trainable else [])
    return _table(model, header, rows, widths, {2}, line_length)


def print_summary(model, line_length: int | None = None, print_fn: Callable[[str], None] | None = None,
                  **options) -> None:
    _emit(summary_lines(model, line_length, **options), print_fn)


def _emit(lines: list, print_fn) -> None:
    """Each line printed; a ``print_fn`` given, as Keras 3 calls it: once, with the whole text."""
    if print_fn is None:
        for text in lines:
            print(text)
    else:
        print_fn("\n".join(lines) + "\n")


def functional_summary_lines(model, line_length: int | None = None, expand_nested: bool = False,
                             show_trainable: bool = False, layer_range=None) -> list[str]:
    """Keras's Functional table: Layer (type), Output Shape, Param #, Connected to (``layer[node][tensor]``
    for each input of each call of the layer in the model)."""
    in_graph = {id(n) for n in model._nodes}

    def row_of(layer, prefix):
        nodes = [n for n in layer.__dict__.get("_inbound_nodes", []) if id(n) in in_graph]
        if prefix:  # (a nested model's layer: its shape as built, no connections in this graph)
            shape = _format_shape(layer.output_shape) if getattr(layer, "built", False) else "?"
            return (f"{prefix}{layer.name} ({_class_name(layer)})", shape, _params(layer), "-")
        shapes = [t.shape for n in nodes[:1] for t in n.outputs]
        shape = _format_shape(shapes[0] if len(shapes) == 1 else shapes) if shapes else "?"
        links = []
        for n in nodes:
            for t in n.inputs:
                producer = t.node.layer
                links.append(f"{producer.name}[{producer._inbound_nodes.index(t.node)}][{t.index}]")
        return (f"{layer.name} ({_class_name(layer)})", shape, _params(layer), ", ".join(links) or "-")

    rows = _rows_of(model, _in_range(model._layers_and_ops, layer_range), expand_nested, show_trainable, row_of)
    header = ("Layer (type)", "Output Shape", "Param #", "Connected to") + (("Trainable",) if show_trainable else ())
    widths = [24, 20, 12, 20] + ([11] if show_trainable else [])
    return _table(model, header, rows, widths, {2}, line_length)


def print_functional_summary(model, line_length: int | None = None, print_fn=None, **options) -> None:
    _emit(functional_summary_lines(model, line_length, **options), print_fn)


def _class_name(layer) -> str:
    """The class shown for a layer: Keras's op name for an op layer (``add (Add)``), else the class's."""
    if getattr(layer, "_fg_model", False):  # (a nested fg.Model: Keras's class name for it, a nested Sequential's)
        return "Sequential" if getattr(layer, "_as_sequential", None) is not None else "Functional"
    return layer.op if type(layer).__name__ == "KerasOp" else type(layer).__name__
