"""Keras-shaped layers."""

from . import registry
from .activation_layers import ELU, LeakyReLU, PReLU, ReLU, Softmax
from .adaptive_pooling import (
    AdaptiveAveragePooling1D,
    AdaptiveAveragePooling2D,
    AdaptiveAveragePooling3D,
    AdaptiveMaxPooling1D,
    AdaptiveMaxPooling2D,
    AdaptiveMaxPooling3D,
)
from .attention import AdditiveAttention, Attention
from .augmentation import (
    RandomBrightness,
    RandomContrast,
    RandomFlip,
    RandomRotation,
    RandomTranslation,
    RandomZoom,
)
from .base import Layer
from .bidirectional import Bidirectional
from .category_encoding import CategoryEncoding, Discretization
from .conv import Conv1D
from .conv2d import Conv2D
from .conv2d_depthwise import DepthwiseConv2D, SeparableConv2D
from .conv3d import Conv3D
from .conv_depthwise import DepthwiseConv1D, SeparableConv1D
from .conv_lstm import ConvLSTM1D, ConvLSTM2D
from .conv_transpose import Conv1DTranspose
from .conv_transpose_nd import Conv2DTranspose, Conv3DTranspose
from .core import Activation, Dropout, Embedding, Identity, Input, InputLayer, Masking
from .dense import Dense
from .einsum_dense import EinsumDense
from .feature_normalization import Normalization, Rescaling, UnitNormalization
from .getitem import GetItem
from .group_normalization import GroupNormalization, RMSNormalization
from .group_query_attention import GroupedQueryAttention
from .gru import GRU
from .hashing import Hashing
from .keras_ops import KerasOp
from .lookup import IntegerLookup, StringLookup
from .lstm import LSTM
from .merge_functions import add, average, concatenate, dot, maximum, minimum, multiply, subtract
from .merging import Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply, Subtract
from .multi_head_attention import MultiHeadAttention
from .noise import GaussianDropout, GaussianNoise, SpatialDropout1D, SpatialDropout2D, SpatialDropout3D
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
from .reshaping_nd import Cropping2D, Cropping3D, UpSampling2D, UpSampling3D, ZeroPadding2D, ZeroPadding3D
from .resizing import CenterCrop, Resizing
from .rnn_cells import RNN, GRUCell, LSTMCell, SimpleRNNCell
from .simple_rnn import SimpleRNN
from .spectrogram import STFTSpectrogram
from .text_vectorization import TextVectorization
from .time_distributed import TimeDistributed

# Keras 3's other names for the same classes
AvgPool1D, AvgPool2D, AvgPool3D = AveragePooling1D, AveragePooling2D, AveragePooling3D
MaxPool1D, MaxPool2D, MaxPool3D = MaxPooling1D, MaxPooling2D, MaxPooling3D
GlobalAvgPool1D, GlobalAvgPool2D = GlobalAveragePooling1D, GlobalAveragePooling2D
GlobalAvgPool3D = GlobalAveragePooling3D
GlobalMaxPool1D, GlobalMaxPool2D, GlobalMaxPool3D = GlobalMaxPooling1D, GlobalMaxPooling2D, GlobalMaxPooling3D
Convolution1D, Convolution2D, Convolution3D = Conv1D, Conv2D, Conv3D
Convolution1DTranspose, Convolution2DTranspose = Conv1DTranspose, Conv2DTranspose
Convolution3DTranspose = Conv3DTranspose
SeparableConvolution1D, SeparableConvolution2D = SeparableConv1D, SeparableConv2D
GroupQueryAttention = GroupedQueryAttention

def serialize(layer) -> dict:
    """Keras's ``keras.layers.serialize``: ``{"module", "class_name", "config", "registered_name"}`` of a layer."""
    own = getattr(type(layer), "_fg_user_layer", False)
    return {"module": None if own else "keras.layers", "class_name": type(layer).__name__, "config": layer.get_config(),
            "registered_name": (getattr(type(layer), "_fg_registered_name", None) or type(layer).__name__) if own
            else None}


def deserialize(config: dict, custom_objects: dict | None = None):
    """Keras's ``keras.layers.deserialize``: the layer (or model) of ``{"class_name": ..., "config": {...}}``;
    ``custom_objects``: a script's own layer classes, by name."""
    if not isinstance(config, dict) or not isinstance(config.get("class_name"), str):
        raise ValueError(f"deserialize expects {{'class_name': ..., 'config': {{...}}}}, received {config!r:.80}")
    name = config["class_name"]
    with registry.custom_layers(custom_objects):
        cls = (registry.model_class("Functional") if name in ("Functional", "Model") else
               registry.model_class("Sequential") if name == "Sequential" else
               registry.lookup(name) or registry.custom_layer(name) or globals().get(name))
        if cls is None:
            raise ValueError(f"deserialize: unknown layer class {name!r} (a script's own is given in custom_objects)")
        return cls.from_config(dict(config.get("config") or {}))


__all__ = [
    "Activation",
    "ActivityRegularization",
    "AdaptiveAveragePooling1D",
    "AdaptiveAveragePooling2D",
    "AdaptiveAveragePooling3D",
    "AdaptiveMaxPooling1D",
    "AdaptiveMaxPooling2D",
    "AdaptiveMaxPooling3D",
    "Add",
    "AdditiveAttention",
    "AlphaDropout",
    "Attention",
    "Average",
    "AveragePooling1D",
    "AveragePooling2D",
    "AveragePooling3D",
    "AvgPool1D",
    "AvgPool2D",
    "AvgPool3D",
    "BatchNormalization",
    "Bidirectional",
    "CenterCrop",
    "Concatenate",
    "Conv1D",
    "Conv1DTranspose",
    "Conv2D",
    "Conv2DTranspose",
    "Conv3D",
    "Conv3DTranspose",
    "ConvLSTM1D",
    "ConvLSTM2D",
    "Convolution1D",
    "Convolution1DTranspose",
    "Convolution2D",
    "Convolution2DTranspose",
    "Convolution3D",
    "Convolution3DTranspose",
    "Cropping1D",
    "Cropping2D",
    "Cropping3D",
    "Dense",
    "DepthwiseConv1D",
    "DepthwiseConv2D",
    "Dot",
    "Dropout",
    "ELU",
    "EinsumDense",
    "Embedding",
    "Flatten",
    "GaussianDropout",
    "GaussianNoise",
    "GetItem",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalAveragePooling3D",
    "GlobalAvgPool1D",
    "GlobalAvgPool2D",
    "GlobalAvgPool3D",
    "GlobalMaxPool1D",
    "GlobalMaxPool2D",
    "GlobalMaxPool3D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "GlobalMaxPooling3D",
    "GroupNormalization",
    "GroupQueryAttention",
    "GroupedQueryAttention",
    "GRU",
    "GRUCell",
    "Identity",
    "Input",
    "InputLayer",
    "KerasOp",
    "Layer",
    "LayerNormalization",
    "LeakyReLU",
    "LSTM",
    "StringLookup",
    "Hashing",
    "CategoryEncoding",
    "Discretization",
    "TextVectorization",
    "IntegerLookup",
    "LSTMCell",
    "Masking",
    "Maximum",
    "MaxPool1D",
    "MaxPool2D",
    "MaxPool3D",
    "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D",
    "Minimum",
    "MultiHeadAttention",
    "Multiply",
    "Normalization",
    "Permute",
    "PReLU",
    "RandomBrightness",
    "RandomContrast",
    "RandomFlip",
    "RandomRotation",
    "RandomTranslation",
    "RandomZoom",
    "RecurrentLayer",
    "Resizing",
    "ReLU",
    "RepeatVector",
    "Rescaling",
    "Reshape",
    "RMSNormalization",
    "RNN",
    "SeparableConv1D",
    "SeparableConv2D",
    "SeparableConvolution1D",
    "SeparableConvolution2D",
    "STFTSpectrogram",
    "SimpleRNN",
    "SimpleRNNCell",
    "Softmax",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "Subtract",
    "TimeDistributed",
    "UnitNormalization",
    "UpSampling1D",
    "UpSampling2D",
    "UpSampling3D",
    "ZeroPadding1D",
    "ZeroPadding2D",
    "ZeroPadding3D",
    "add",
    "average",
    "concatenate",
    "dot",
    "maximum",
    "minimum",
    "multiply",
    "subtract",
]
