"""Keras-style automatic names of layers and ops (``gru``, ``gru_1``, ...): one counter per base name, started
afresh by ``fastgru.backend.clear_session``."""

from __future__ import annotations

import re
from collections import Counter
from contextlib import contextmanager

_name_counts: Counter = Counter()


def snake_case(name: str) -> str:
    """'SimpleRNN' -> 'simple_rnn', 'GRU' -> 'gru' (Keras's own rule)."""
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", s).lower()


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
