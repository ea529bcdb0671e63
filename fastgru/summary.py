"""Keras-style ``model.summary()`` table."""

from __future__ import annotations

from collections.abc import Callable


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


def summary_lines(model, line_length: int | None = None) -> list[str]:
    """The lines of the summary table of a built Sequential model."""
    widths = [33, 24, 15]
    if line_length:
        scale = line_length / (sum(widths) + 4)
        widths = [max(10, int(w * scale)) for w in widths]
    rows = []
    for layer in model.layers:
        shape = _format_shape(layer.output_shape) if layer.built else "?"
        rows.append((f"{layer.name} ({_class_name(layer)})", shape, f"{layer.count_params():,}"))
    for row in rows:
        widths = [max(w, len(c) + 2) for w, c in zip(widths, row)]

    def line(left, mid, right, fill):
        return left + mid.join(fill * (w + 1) for w in widths) + right

    def cells(cols, sep):
        parts = [f" {cols[0]:<{widths[0]}}", f" {cols[1]:<{widths[1]}}", f"{cols[2]:>{widths[2]}} "]
        return sep + sep.join(parts) + sep

    out = [f'Model: "{model.name}"', line("┏", "┳", "┓", "━"), cells(("Layer (type)", "Output Shape", "Param #"), "┃")]
    out.append(line("┡", "╇", "┩", "━"))
    for i, row in enumerate(rows):
        out.append(cells(row, "│"))
        out.append(line("├", "┼", "┤", "─") if i < len(rows) - 1 else line("└", "┴", "┘", "─"))
    if not rows:
        out.append(line("└", "┴", "┘", "─"))
    total = sum(layer.count_params() for layer in model.layers)
    trainable = sum(w.size for w in model.trainable_weights)
    itemsize = 4
    out.append(f" Total params: {total:,} ({_format_bytes(total * itemsize)})")
    out.append(f" Trainable params: {trainable:,} ({_format_bytes(trainable * itemsize)})")
    out.append(f" Non-trainable params: {total - trainable:,} ({_format_bytes((total - trainable) * itemsize)})")
    return out


def print_summary(model, line_length: int | None = None, print_fn: Callable[[str], None] | None = None) -> None:
    print_fn = print_fn or print
    for text in summary_lines(model, line_length):
        print_fn(text)


def functional_summary_lines(model, line_length: int | None = None) -> list[str]:
    """Keras's Functional table: Layer (type), Output Shape, Param #, Connected to (``layer[node][tensor]``
    for each input of each call of the layer in the model)."""
    widths = [24, 20, 12, 20]
    if line_length:
        scale = line_length / (sum(widths) + 5)
        widths = [max(10, int(w * scale)) for w in widths]
    in_graph = {id(n) for n in model._nodes}
    rows = []
    for layer in model.layers:
        nodes = [n for n in layer.__dict__.get("_inbound_nodes", []) if id(n) in in_graph]
        shapes = [t.shape for n in nodes[:1] for t in n.outputs]
        shape = _format_shape(shapes[0] if len(shapes) == 1 else shapes) if shapes else "?"
        links = []
        for n in nodes:
            for t in n.inputs:
                producer = t.node.layer
                links.append(f"{producer.name}[{producer._inbound_nodes.index(t.node)}][{t.index}]")
        rows.append((f"{layer.name} ({_class_name(layer)})", shape, f"{layer.count_params():,}",
                     ", ".join(links) or "-"))
    for row in rows:
        widths = [max(w, len(c) + 2) for w, c in zip(widths, row)]

    def line(left, mid, right, fill):
        return left + mid.join(fill * (w + 1) for w in widths) + right

    def cells(cols, sep):
        parts = [f" {cols[0]:<{widths[0]}}", f" {cols[1]:<{widths[1]}}", f"{cols[2]:>{widths[2]}} ",
                 f" {cols[3]:<{widths[3]}}"]
        return sep + sep.join(parts) + sep

    out = [f'Model: "{model.name}"', line("┏", "┳", "┓", "━"),
           cells(("Layer (type)", "Output Shape", "Param #", "Connected to"), "┃"), line("┡", "╇", "┩", "━")]
    for i, row in enumerate(rows):
        out.append(cells(row, "│"))
        out.append(line("├", "┼", "┤", "─") if i < len(rows) - 1 else line("└", "┴", "┘", "─"))
    total = model.count_params()
    trainable = sum(w.size for w in model.trainable_weights)
    out.append(f" Total params: {total:,} ({_format_bytes(total * 4)})")
    out.append(f" Trainable params: {trainable:,} ({_format_bytes(trainable * 4)})")
    out.append(f" Non-trainable params: {total - trainable:,} ({_format_bytes((total - trainable) * 4)})")
    return out


def print_functional_summary(model, line_length: int | None = None, print_fn=None) -> None:
    print_fn = print_fn or print
    for text in functional_summary_lines(model, line_length):
        print_fn(text)


def _class_name(layer) -> str:
    """The class shown for a layer: Keras's op name for an op layer (``add (Add)``), else the class's."""
    if getattr(layer, "_fg_model", False):
        return "Functional"  # (a nested fg.Model: Keras's class name for it)
    return layer.op if type(layer).__name__ == "KerasOp" else type(layer).__name__
