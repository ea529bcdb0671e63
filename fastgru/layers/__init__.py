"""Keras-shaped layers."""

from .base import Layer
from .core import Activation, Dropout, Embedding, Input, InputLayer, Masking
from .dense import Dense
from .gru import GRU

__all__ = ["Activation", "GRU", "Dense", "Dropout", "Embedding", "Input", "InputLayer", "Layer", "Masking"]
