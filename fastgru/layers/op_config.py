"""The Keras ops ``KerasOp`` runs (``keras_ops``), as tables: each op's values and gradients (``SHAPE_OPS``,
``PRODUCTS``: the ``op_*`` modules'), its Keras module (written back on save), the config keys Keras writes for it,
the keyword arguments its node may carry and its defaults."""

from __future__ import annotations

from .op_attention import ATTENTION_OPS
from .op_axis import AXIS_SHAPE_OPS, GATHERS
from .op_ctc import CTC_OPS
from .op_elementwise import BINARY, TERNARY, UNARY
from .op_products import PRODUCTS as _PRODUCTS
from .op_shapes import REDUCTIONS
from .op_shapes import SHAPE_OPS as _SHAPE_OPS
from .op_slices import SLICE_OPS

SHAPE_OPS = {**_SHAPE_OPS, **AXIS_SHAPE_OPS, **SLICE_OPS, **CTC_OPS}
PRODUCTS = {**_PRODUCTS, **GATHERS, **ATTENTION_OPS}  # (two operands each; dot_product_attention three to five)
_OTHER_OPS = {**SHAPE_OPS, **PRODUCTS}  # (the tables _run and backward look the rest up in)

_NUMPY, _NN, _MATH = "keras.src.ops.numpy", "keras.src.ops.nn", "keras.src.ops.math"
#: the op's Keras module (written back on save) and the config keys Keras writes for it
_NN_OPS = {"Sigmoid", "Relu", "Gelu", "Silu", "Softplus", "Softmax", "LogSoftmax", "Elu", "LeakyRelu", "HardSigmoid",
           "Relu6", "Softsign", "Selu", "LogSigmoid", "HardSilu", "HardTanh", "Celu", "TanhShrink", "Squareplus",
           "SparsePlus", "SoftShrink", "HardShrink", "Threshold", "Glu", "Normalize", "Moments",
           "OneHot", "LayerNorm", "RMSNorm", "DotProductAttention", "CTCLoss"}
MODULES = {**{op: _NUMPY for op in (*BINARY, *TERNARY, *UNARY, *REDUCTIONS, *SHAPE_OPS, *PRODUCTS)},
           **{op: _NN for op in _NN_OPS}, "Erf": _MATH, "Rsqrt": _MATH, "Logsumexp": _MATH, "TopK": _MATH,
           "Erfc": _MATH, "Erfinv": _MATH, "Cast": "keras.src.ops.core", "StopGradient": "keras.src.ops.core",
           "Slice": "keras.src.ops.core", "Unstack": "keras.src.ops.core",
           "Norm": "keras.src.ops.linalg"}
CONFIG_KEYS = {
    **{op: () for op in (*BINARY, *TERNARY, *UNARY, "Matmul")},
    "Gelu": ("approximate",), "Elu": ("alpha",), "LeakyRelu": ("negative_slope",), "Softmax": ("axis",),
    "LogSoftmax": ("axis",), "Clip": ("x_min", "x_max"), "Cast": ("dtype",),
    **{op: ("axis", "keepdims") for op in ("Sum", "Mean", "Var", "Std", "Logsumexp", "Any", "All")},
    "Max": ("axis", "keepdims", "initial"), "Min": ("axis", "keepdims", "initial"), "Average": ("axis",),
    "Norm": ("ord", "axis", "keepdims"), "CountNonzero": ("axis",),
    "DotProductAttention": ("is_causal", "flash_attention", "attn_logits_soft_cap"),
    "Concatenate": ("axis",), "Stack": ("axis",), "ExpandDims": ("axis",), "Squeeze": ("axis",),
    "Reshape": ("newshape",), "Transpose": ("axes",), "Swapaxes": ("axis1", "axis2"),
    "Moveaxis": ("source", "destination"), "Flip": ("axis",), "Cumsum": ("axis", "dtype"),
    "Pad": ("pad_width", "mode"), "Einsum": ("subscripts",), "Dot": (), "Tensordot": ("axes",),
    "Celu": ("alpha",), "Squareplus": ("b",), "SoftShrink": ("threshold",), "HardShrink": ("threshold",),
    "Threshold": ("threshold", "default_value"), "Round": ("decimals",),
    "Amax": ("axis", "keepdims"), "Amin": ("axis", "keepdims"), "Argmax": ("axis", "keepdims"),
    "Argmin": ("axis", "keepdims"), "Glu": ("axis",), "Normalize": ("axis", "order", "epsilon"),
    "Repeat": ("repeats", "axis"), "Tile": ("repeats",), "Roll": ("shift", "axis"),
    "Split": ("indices_or_sections", "axis"), "Sort": ("axis",), "Argsort": ("axis",), "TopK": ("k", "sorted"),
    "Moments": ("axes", "keepdims", "synchronized"), "Take": ("axis",), "TakeAlongAxis": ("axis",),
    "OneHot": ("num_classes", "axis", "dtype", "sparse"), "Diff": ("n", "axis"), "Cumprod": ("axis", "dtype"),
    "Triu": ("k",), "Tril": ("k",), "OnesLike": ("dtype",), "ZerosLike": ("dtype",), "FullLike": ("dtype",),
    "NanToNum": ("nan", "posinf", "neginf"), "Prod": ("axis", "keepdims", "dtype"),
    "Slice": ("shape",), "Unstack": ("num", "axis"), "Hstack": (),
    "LayerNorm": ("axis", "epsilon", "rms_scaling"), "RMSNorm": ("axis", "epsilon"), "CTCLoss": ("mask_index",),
}
#: keyword arguments a node may carry (Keras writes them in the node, not the config)
_NODE_KWARGS = {"Average": {"weights"}, "Pad": {"constant_values"}, "RMSNorm": {"scale"},
                "DotProductAttention": {"bias", "mask", "scale"}}
_DEFAULTS = {"Gelu": {"approximate": True}, "Elu": {"alpha": 1.0}, "LeakyRelu": {"negative_slope": 0.2},
             "Softmax": {"axis": -1}, "LogSoftmax": {"axis": -1}, "Celu": {"alpha": 1.0}, "Squareplus": {"b": 4},
             "SoftShrink": {"threshold": 0.5}, "HardShrink": {"threshold": 0.5}, "Round": {"decimals": 0},
             "NanToNum": {"nan": 0.0, "posinf": None, "neginf": None}}

