"""Keras-shaped layers."""

from .base import Layer
from .bidirectional import Bidirectional
from .core import Activation, Dropout, Embedding, Input, InputLayer, Masking
from .dense import Dense
from .gru import GRU
from .lstm import LSTM
from .recurrent import RecurrentLayer

__all__ = ["Activation", "Bidirectional", "GRU", "Dense", "Dropout", "Embedding", "Input", "InputLayer", "LSTM", "Layer",
           "Masking", "RecurrentLayer"]
