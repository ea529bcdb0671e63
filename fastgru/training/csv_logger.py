"""Keras 3's ``CSVLogger`` callback (``keras/src/callbacks/csv_logger.py``), exported by
:mod:`fastgru.training.callbacks`: one row per epoch, the same file Keras writes."""

from __future__ import annotations

import collections
import csv
import os

import numpy as np

from .callback_base import Callback


def _cell(value):
    """Keras's ``handle_value``: strings as they are, iterables (not 0-d arrays) as ``"[a, b]"``."""
    if isinstance(value, str):
        return value
    if isinstance(value, collections.abc.Iterable) and not (isinstance(value, np.ndarray) and value.ndim == 0):
        return f'"[{", ".join(map(str, value))}]"'
    return value


class CSVLogger(Callback):
    """Stream each epoch's logs to a CSV file, as ``keras.callbacks.CSVLogger``.

    Columns: ``epoch`` (0-based), then the first epoch's log keys sorted (with ``val_<key>`` for each added when
    the first epoch has no validation keys); a key missing later is written ``NA``; numbers as ``str``
    (Python floats in full). ``append=True`` continues an existing file (the header only if it is empty).
    """

    def __init__(self, filename, separator: str = ",", append: bool = False):
        super().__init__()
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(f"separator must be a one-character string; received {separator!r}")
        self.sep = separator
        self.filename = os.fspath(filename) if isinstance(filename, os.PathLike) else filename
        if not isinstance(self.filename, str):
            raise ValueError(f"filename must be a path; received {filename!r}")
        self.append = bool(append)
        self.writer = None
        self.keys: list | None = None
        self.append_header = True
        self.csv_file = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        if self.append:
            if os.path.exists(self.filename):
                with open(self.filename) as f:
                    self.append_header = not bool(len(f.readline()))
            mode = "a"
        else:
            mode = "w"
        if self.csv_file and not self.csv_file.closed:
            self.csv_file.close()
        self.csv_file = open(self.filename, mode)  # noqa: SIM115 (kept open for the run, as Keras)
        self.writer = None
        self.keys = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs.keys())
            if self.keys and not any(key.startswith("val_") for key in self.keys):
                self.keys.extend([f"val_{k}" for k in self.keys])
        if not self.writer:
            class Dialect(csv.excel):
                delimiter = self.sep

            self.writer = csv.DictWriter(self.csv_file, fieldnames=["epoch"] + (self.keys or []), dialect=Dialect)
            if self.append_header:
                self.writer.writeheader()
        row = collections.OrderedDict({"epoch": epoch})
        row.update((key, _cell(logs.get(key, "NA"))) for key in self.keys)
        self.writer.writerow(row)
        self.csv_file.flush()

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.csv_file and not self.csv_file.closed:
            self.csv_file.close()
        self.writer = None
