"""Training pieces in pure NumPy, numerically matching Keras 3: losses (with gradients), metrics,
optimizers, callbacks and the progress bar."""

from . import callbacks, losses, metrics, optimizers, progress
from .callbacks import Callback, CallbackList, EarlyStopping, History, ModelCheckpoint, ProgbarLogger
from .losses import (
    BinaryCrossentropy,
    CategoricalCrossentropy,
    Huber,
    Loss,
    SparseCategoricalCrossentropy,
)
from .metrics import Metric
from .optimizers import SGD, Adagrad, Adam, Adamax, AdamW, Nadam, Optimizer, RMSprop
from .progress import Progbar

__all__ = [
    "SGD",
    "Adagrad",
    "Adamax",
    "AdamW",
    "Nadam",
    "Adam",
    "BinaryCrossentropy",
    "Callback",
    "CallbackList",
    "CategoricalCrossentropy",
    "EarlyStopping",
    "History",
    "Huber",
    "Loss",
    "Metric",
    "ModelCheckpoint",
    "Optimizer",
    "Progbar",
    "ProgbarLogger",
    "RMSprop",
    "SparseCategoricalCrossentropy",
    "callbacks",
    "losses",
    "metrics",
    "optimizers",
    "progress",
]
