"""Exceptions that fastgru raises for bad files and unsupported Keras features."""

from __future__ import annotations


class FastGRUError(Exception):
    """Base class of fastgru's own exceptions."""


class ModelFileError(FastGRUError, ValueError):
    """A model or weights file is damaged, truncated, foreign or inconsistent.

    The message names the path and what was wrong with it.
    """

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class CLIError(FastGRUError):
    """A bad argument or input file for the ``fastgru`` command: printed as ``fastgru CMD: error: ...``,
    exit code 2 (``fastgru.cli``)."""


class UnsupportedKerasFeature(FastGRUError, NotImplementedError):
    """A Keras layer class or option that fastgru does not implement.

    The message names the layer and the option.
    """


class NotCompiledError(FastGRUError, ValueError, RuntimeError):
    """``fit``, ``evaluate`` or ``train_on_batch`` of a model not compiled: Keras's ``ValueError`` (also a
    ``RuntimeError``, as fastgru raised it before)."""
