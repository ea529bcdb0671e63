"""Keras-shaped layers."""

from .base import Layer
from .core import Dropout, Embedding, Input, InputLayer, Masking
from .dense import Dense
from .gru import GRU

__all__ = ["GRU", "Dense", "Dropout", "Embedding", "Input", "InputLayer", "Layer", "Masking"]
