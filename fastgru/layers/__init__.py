"""Keras-shaped layers."""

from .activation_layers import ELU, LeakyReLU, PReLU, ReLU, Softmax
from .attention import AdditiveAttention, Attention
from .base import Layer
from .bidirectional import Bidirectional
from .conv import Conv1D
from .conv2d import Conv2D
from .conv3d import Conv3D
from .conv_depthwise import DepthwiseConv1D, SeparableConv1D
from .conv_lstm import ConvLSTM1D, ConvLSTM2D
from .conv_transpose import Conv1DTranspose
from .core import Activation, Dropout, Embedding, Identity, Input, InputLayer, Masking
from .dense import Dense
from .feature_normalization import Normalization, Rescaling, UnitNormalization
from .getitem import GetItem
from .group_normalization import GroupNormalization, RMSNormalization
from .gru import GRU
from .keras_ops import KerasOp
from .lstm import LSTM
from .merging import Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply, Subtract
from .multi_head_attention import MultiHeadAttention
from .noise import GaussianDropout, GaussianNoise, SpatialDropout1D, SpatialDropout2D
from .normalization import BatchNormalization, LayerNormalization
from .pooling import Flatten, GlobalAveragePooling1D, GlobalMaxPooling1D
from .pooling1d import AveragePooling1D, MaxPooling1D
from .pooling_nd import (
    AveragePooling2D,
    AveragePooling3D,
    GlobalAveragePooling2D,
    GlobalAveragePooling3D,
    GlobalMaxPooling2D,
    GlobalMaxPooling3D,
    MaxPooling2D,
    MaxPooling3D,
)
from .recurrent import RecurrentLayer
from .regularization_layers import ActivityRegularization, AlphaDropout
from .reshaping import Cropping1D, Permute, RepeatVector, Reshape, UpSampling1D, ZeroPadding1D
from .reshaping2d import Cropping2D, UpSampling2D, ZeroPadding2D
from .rnn_cells import RNN, GRUCell, LSTMCell, SimpleRNNCell
from .simple_rnn import SimpleRNN
from .time_distributed import TimeDistributed

__all__ = [
    "Activation",
    "AdditiveAttention",
    "ActivityRegularization",
    "AlphaDropout",
    "Attention",
    "Add",
    "Average",
    "AveragePooling1D",
    "AveragePooling2D",
    "AveragePooling3D",
    "BatchNormalization",
    "Bidirectional",
    "Concatenate",
    "Conv1D",
    "Conv2D",
    "Conv3D",
    "ConvLSTM1D",
    "ConvLSTM2D",
    "Conv1DTranspose",
    "Cropping1D",
    "Cropping2D",
    "Dense",
    "Dot",
    "DepthwiseConv1D",
    "Dropout",
    "ELU",
    "Embedding",
    "Flatten",
    "GRU",
    "GroupNormalization",
    "GRUCell",
    "KerasOp",
    "GetItem",
    "GaussianDropout",
    "GaussianNoise",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalAveragePooling3D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "GlobalMaxPooling3D",
    "Identity",
    "Input",
    "InputLayer",
    "LSTM",
    "LSTMCell",
    "Layer",
    "LayerNormalization",
    "LeakyReLU",
    "Masking",
    "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D",
    "Normalization",
    "Maximum",
    "Minimum",
    "MultiHeadAttention",
    "Multiply",
    "PReLU",
    "Permute",
    "ReLU",
    "RMSNormalization",
    "RNN",
    "RecurrentLayer",
    "RepeatVector",
    "Rescaling",
    "Reshape",
    "SeparableConv1D",
    "SimpleRNN",
    "SimpleRNNCell",
    "Softmax",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "TimeDistributed",
    "UnitNormalization",
    "Subtract",
    "UpSampling1D",
    "UpSampling2D",
    "ZeroPadding1D",
    "ZeroPadding2D",
]
