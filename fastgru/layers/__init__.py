"""Keras-shaped layers."""

from .base import Layer
from .bidirectional import Bidirectional
from .conv import Conv1D
from .core import Activation, Dropout, Embedding, Input, InputLayer, Masking
from .dense import Dense
from .gru import GRU
from .lstm import LSTM
from .pooling import Flatten, GlobalAveragePooling1D, GlobalMaxPooling1D
from .pooling1d import AveragePooling1D, MaxPooling1D
from .recurrent import RecurrentLayer

__all__ = ["Activation", "AveragePooling1D", "Bidirectional", "Conv1D", "Dense", "Dropout", "Embedding", "Flatten",
           "GRU", "GlobalAveragePooling1D", "GlobalMaxPooling1D", "Input", "InputLayer", "LSTM", "Layer", "Masking",
           "MaxPooling1D", "RecurrentLayer"]
