"""Keras-style automatic names of layers and ops (``gru``, ``gru_1``, ...): one counter per base name, started
afresh by ``fastgru.backend.clear_session``."""

from __future__ import annotations

from collections import Counter
from contextlib import contextmanager

_name_counts: Counter = Counter()


def unique_name(base: str) -> str:
    """Keras-style automatic names: 'gru', 'gru_1', 'gru_2', ..."""
    n = _name_counts[base]
    _name_counts[base] += 1
    return base if n == 0 else f"{base}_{n}"


@contextmanager
def names_kept():
    """Within the block, automatic names are taken without counting: the names after it are those they would have
    been without it (a custom layer's call traced for training makes ops and inputs the user never sees)."""
    counts = dict(_name_counts)
    try:
        yield
    finally:
        _name_counts.clear()
        _name_counts.update(counts)
