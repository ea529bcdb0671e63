"""Gradients of row lookups (Embedding), kept as their slices, as TensorFlow's ``IndexedSlices``.

An Embedding's gradient is one (output_dim,) row per looked-up token, added into the row of that
token. Keras (TensorFlow backend) hands optimizers these slices, not their sum, and its update rules
square the *slices* before adding them up: Adam's and RMSprop's velocities and Adagrad's accumulator
receive the sum of the squared slices (not the square of the summed gradient), and ``clipnorm`` /
``global_clipnorm`` measure the norm of all slices. :class:`RowGradient` keeps the slices so that
fastgru's optimizers do the same, number for number.
"""

from __future__ import annotations

import numpy as np


class RowGradient:
    """``values[k]`` added into row ``indices[k]`` of a ``shape`` (N, dim) variable.

    indices (K,) int; values (K, dim). Duplicated indices are kept (one slice per lookup).
    """

    __slots__ = ("indices", "values", "shape", "sum_first")
    __array_ufunc__ = None  # ``array + RowGradient`` calls ``__radd__``, not an object-array sum

    def __init__(self, indices: np.ndarray, values: np.ndarray, shape: tuple, sum_first: bool = False):
        self.indices = np.asarray(indices).reshape(-1)
        self.values = np.asarray(values).reshape(self.indices.shape[0], -1)
        self.shape = tuple(shape)
        #: tf_keras's optimizers: clipped as slices, then summed per row before the update rule (dense)
        self.sum_first = sum_first

    @property
    def dtype(self) -> np.dtype:
        return self.values.dtype

    def _scatter(self, values: np.ndarray) -> np.ndarray:
        out = np.zeros(self.shape, values.dtype)
        np.add.at(out, self.indices, values)
        return out

    def dense(self) -> np.ndarray:
        """The summed gradient, shaped like the variable."""
        return self._scatter(self.values)

    def squares(self) -> np.ndarray:
        """Per row, the sum of the squared slices (what Keras's update rules call the squared gradient)."""
        return self._scatter(np.square(self.values))

    def sum_squares(self):
        """Squared norm of all the slices (``clipnorm`` / ``global_clipnorm``)."""
        return np.sum(np.square(self.values), dtype=self.values.dtype)

    def unique_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """(the rows looked up, each once, in order; their summed slices): TensorFlow's deduplication."""
        rows, where = np.unique(self.indices, return_inverse=True)
        summed = np.zeros((rows.size,) + self.values.shape[1:], self.values.dtype)
        np.add.at(summed, where.reshape(-1), self.values)
        return rows, summed

    def with_values(self, values: np.ndarray) -> RowGradient:
        return RowGradient(self.indices, values, self.shape, self.sum_first)

    def astype(self, dtype, copy: bool = False) -> RowGradient:
        return self.with_values(self.values.astype(dtype, copy=copy))

    def __add__(self, other):
        """The sum of two gradients of one variable (a shared layer's calls), as TensorFlow aggregates
        them: two row gradients concatenate their slices (duplicates stay apart: squared per slice);
        a dense gradient makes the sum dense."""
        if isinstance(other, RowGradient):
            if other.shape != self.shape:
                raise ValueError(f"cannot add row gradients of shapes {self.shape} and {other.shape}")
            return RowGradient(np.concatenate([self.indices, other.indices]),
                               np.concatenate([self.values, other.values]), self.shape, self.sum_first)
        other = np.asarray(other)
        if other.shape != self.shape:
            raise ValueError(f"cannot add a gradient of shape {other.shape} to a row gradient of shape {self.shape}")
        return self.dense() + other

    __radd__ = __add__  # a dense array on the left (``__array_ufunc__ = None`` sends it here)
