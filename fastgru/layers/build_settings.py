"""Per-thread settings the layers read while they build (a model built from a file: its weights placeholders, their
total bounded by the file's; its graph's recorded ``mask=`` arguments replayed as written)."""

from __future__ import annotations

import threading
from contextlib import contextmanager

#: this thread's settings: ``placeholder``, ``left`` (the weight elements still allowed), ``replaying``
thread_settings = threading.local()


class WeightBudgetExceeded(ValueError):
    """Building would create more weight elements than the active :func:`weight_budget` allows."""


@contextmanager
def _thread_setting(name: str, value):
    """Within the block, this thread's setting ``name`` (``placeholder``, ``left``, ``replaying``) is ``value``."""
    previous = getattr(thread_settings, name, None)
    setattr(thread_settings, name, value)
    try:
        yield
    finally:
        setattr(thread_settings, name, previous)


def placeholder_weights():
    """Within the block, layers of this thread create their weights as zeros instead of running their
    initializers: for a model built to receive a file's weights (``fastgru.io``), where an orthogonal
    initializer on a large recurrent kernel would take seconds for arrays about to be overwritten."""
    return _thread_setting("placeholder", True)


def weight_budget(elements: int):
    """Within the block, layers of this thread may create at most ``elements`` weight elements in total;
    one more raises WeightBudgetExceeded *before* allocating (fastgru.io bounds a model built from a
    file's config by the size of the file's weights, so a damaged size cannot allocate absurd memory)."""
    return _thread_setting("left", int(elements))


def replaying_file():
    """While a model file's graph is rebuilt (``fastgru.io``): its nodes' ``mask=`` arguments are taken as written,
    for any layer (files fastgru wrote before it refused them where Keras does), not only for the layers whose Keras
    call takes one (``accepts_mask_argument``), as in code."""
    return _thread_setting("replaying", True)


def replaying() -> bool:
    return bool(getattr(thread_settings, "replaying", False))
