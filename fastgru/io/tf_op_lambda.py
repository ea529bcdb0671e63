"""tf_keras's op layers as the Keras 3 op layers fastgru runs.

tf_keras (Keras 2) records a TensorFlow function called on graph tensors as a ``TFOpLambda`` layer (``x + y``
is ``tf.__operators__.add``, ``tf.reduce_mean(h, axis=1)`` is ``tf.math.reduce_mean``) and an index as a
``SlicingOpLambda`` (``h[:, -1]``). Their node is ``[first argument, node, tensor, {the other arguments by
TensorFlow's names}]`` (a list of such for a list argument, ``tf.concat([a, b], axis=-1)``; the first
argument ``["_CONSTANT_VALUE", -1, value, {...}]`` when it is a number, ``1.0 - h``). :func:`translate` gives
the Keras 3 op entry of the same computation (``Add``, ``Mean(axis=1)``, ``GetItem``...), which the graph
loader runs as it runs Keras 3's (``layers/keras_ops.py``, ``layers/getitem.py``); a function fastgru does not
map is refused by name. Nothing in the file runs: the function is looked up in a fixed table.
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelFileError, UnsupportedKerasFeature
from ..layers import registry
from .config_checks import _short

_BINARY = {"__operators__.add": "Add", "math.add": "Add", "math.add_n": None, "math.subtract": "Subtract",
           "math.multiply": "Multiply", "math.truediv": "TrueDivide", "math.divide": "TrueDivide",
           "math.maximum": "Maximum", "math.minimum": "Minimum", "math.pow": "Power",
           "math.not_equal": "NotEqual", "math.equal": "Equal", "math.greater": "Greater",
           "math.greater_equal": "GreaterEqual", "math.less": "Less", "math.less_equal": "LessEqual",
           "math.logical_and": "LogicalAnd", "math.logical_or": "LogicalOr", "math.floordiv": "FloorDivide",
           "compat.v1.floor_div": "FloorDivide", "math.floormod": "Mod", "math.atan2": "Arctan2",
           "math.logical_xor": "LogicalXor", "math.divide_no_nan": "DivideNoNan"}
_UNARY = {"math.negative": "Negative", "math.tanh": "Tanh", "math.sigmoid": "Sigmoid", "nn.sigmoid": "Sigmoid",
          "nn.relu": "Relu", "math.sqrt": "Sqrt", "math.rsqrt": "Rsqrt", "math.exp": "Exp", "math.log": "Log",
          "math.abs": "Absolute", "math.square": "Square", "math.sign": "Sign", "math.softplus": "Softplus",
          "nn.softplus": "Softplus", "nn.elu": "Elu", "math.erf": "Erf", "nn.relu6": "Relu6", "nn.selu": "Selu",
          "nn.softsign": "Softsign", "math.softsign": "Softsign", "nn.silu": "Silu", "nn.swish": "Silu",
          "math.log_sigmoid": "LogSigmoid", "math.log1p": "Log1p", "math.expm1": "Expm1", "math.sin": "Sin",
          "math.cos": "Cos", "math.tan": "Tan", "math.sinh": "Sinh", "math.cosh": "Cosh", "math.atan": "Arctan",
          "math.floor": "Floor", "math.ceil": "Ceil", "math.round": "Round", "math.reciprocal": "Reciprocal",
          "math.logical_not": "LogicalNot", "math.is_nan": "Isnan", "math.is_inf": "Isinf",
          "math.is_finite": "Isfinite", "stop_gradient": "StopGradient", "math.asin": "Arcsin", "math.acos": "Arccos",
          "math.asinh": "Arcsinh", "math.acosh": "Arccosh", "math.atanh": "Arctanh", "math.erfc": "Erfc",
          "math.erfinv": "Erfinv"}
_REDUCTIONS = {"math.reduce_mean": "Mean", "math.reduce_sum": "Sum", "math.reduce_max": "Max",
               "math.reduce_min": "Min", "math.reduce_std": "Std", "math.reduce_variance": "Var",
               "math.reduce_logsumexp": "Logsumexp", "math.reduce_prod": "Prod", "math.reduce_any": "Any",
               "math.reduce_all": "All"}
#: function -> (op, {TensorFlow's argument: (Keras op config key, default)})
_SHAPED = {"nn.softmax": ("Softmax", {"axis": ("axis", -1)}), "nn.log_softmax": ("LogSoftmax", {"axis": ("axis", -1)}),
           "expand_dims": ("ExpandDims", {"axis": ("axis", None)}),
           "compat.v1.squeeze": ("Squeeze", {"axis": ("axis", None)}), "squeeze": ("Squeeze", {"axis": ("axis", None)}),
           "reshape": ("Reshape", {"shape": ("newshape", None)}),
           "compat.v1.transpose": ("Transpose", {"perm": ("axes", None)}),
           "transpose": ("Transpose", {"perm": ("axes", None)}),
           "concat": ("Concatenate", {"axis": ("axis", None)}), "stack": ("Stack", {"axis": ("axis", 0)}),
           "cast": ("Cast", {"dtype": ("dtype", None)}), "dtypes.cast": ("Cast", {"dtype": ("dtype", None)}),
           "nn.gelu": ("Gelu", {"approximate": ("approximate", False)}),
           "nn.leaky_relu": ("LeakyRelu", {"alpha": ("negative_slope", 0.2)}),
           "math.argmax": ("Argmax", {"axis": ("axis", None)}), "math.argmin": ("Argmin", {"axis": ("axis", None)}),
           "tile": ("Tile", {"multiples": ("repeats", None)}),
           "roll": ("Roll", {"shift": ("shift", None), "axis": ("axis", None)}),
           "repeat": ("Repeat", {"repeats": ("repeats", None), "axis": ("axis", None)}),
           # l2_normalize's x * rsqrt(max(sum x², eps)) is Keras's x * min(rsqrt(sum x²), 1 / sqrt(eps))
           "math.l2_normalize": ("Normalize", {"axis": ("axis", None), "epsilon": ("epsilon", 1e-12)}),
           "nn.l2_normalize": ("Normalize", {"axis": ("axis", None), "epsilon": ("epsilon", 1e-12)}),
           "zeros_like": ("ZerosLike", {"dtype": ("dtype", None)}),
           "ones_like": ("OnesLike", {"dtype": ("dtype", None)}),
           "clip_by_value": ("Clip", {"clip_value_min": ("x_min", None), "clip_value_max": ("x_max", None)}),
           "reverse": ("Flip", {"axis": ("axis", None)}),
           "unstack": ("Unstack", {"num": ("num", None), "axis": ("axis", 0)}),
           "split": ("Split", {"num_or_size_splits": ("indices_or_sections", None), "axis": ("axis", 0)}),
           "pad": ("Pad", {"paddings": ("pad_width", None), "mode": ("mode", "CONSTANT")}),
           "compat.v1.pad": ("Pad", {"paddings": ("pad_width", None), "mode": ("mode", "CONSTANT")}),
           "math.cumsum": ("Cumsum", {"axis": ("axis", 0)}), "math.cumprod": ("Cumprod", {"axis": ("axis", 0)})}
#: arguments that change nothing at their default (and the op's name, whatever it is)
_HARMLESS = {"exclusive": False, "reverse": False, "conjugate": False, "transpose_a": False, "transpose_b": False,
             "adjoint_a": False, "adjoint_b": False, "a_is_sparse": False, "b_is_sparse": False, "output_type": None}


FUNCTIONS = sorted(k for k, v in {**_BINARY, **_UNARY, **_REDUCTIONS, **_SHAPED, "linalg.matmul": 1,
                                  "__operators__.getitem": 1, "where": 1, "gather": 1}.items() if v)


def is_tf_op_layer(entry) -> bool:
    return isinstance(entry, dict) and entry.get("class_name") in ("TFOpLambda", "SlicingOpLambda")


def _tensor(ref) -> dict:
    return {"class_name": "__keras_tensor__", "config": {"keras_history": list(ref[:3])}}


def _is_ref(value) -> bool:
    return (isinstance(value, list) and len(value) in (3, 4) and isinstance(value[0], str)
            and isinstance(value[1], int) and isinstance(value[2], int) and value[0] != "_CONSTANT_VALUE")


def _value(value, depth=0):
    """A node argument: a tensor reference as Keras 3's tensor, a list of them likewise, an array of numbers
    (a constant computed when the model was built, such as a positional encoding) as Keras 3's NumPy
    constant, else the value."""
    if _is_ref(value):
        return _tensor(value)
    if isinstance(value, list) and depth == 0 and not _has_ref(value):
        return {"class_name": "__numpy__", "config": {"value": value, "dtype": "float32"}}
    if isinstance(value, list) and depth < 8:  # (deeper: left as it is, and refused by the op's checks)
        return [_value(v, depth + 1) for v in value]
    return value


def _has_ref(value, depth=0) -> bool:
    if _is_ref(value):
        return True
    return isinstance(value, list) and depth < 8 and any(_has_ref(v, depth + 1) for v in value)


def _first(node, where, path):
    """(the first argument, the other arguments by name) of a tf_keras op node."""
    if isinstance(node, list) and node and all(isinstance(v, list) for v in node):  # a list first argument
        kwargs = node[0][3] if len(node[0]) > 3 and isinstance(node[0][3], dict) else {}
        if not all(v and isinstance(v[0], str) for v in node):
            raise ModelFileError(path, f"{where}: malformed op node {_short(node)}")
        return [_first(v, where, path)[0] for v in node], dict(kwargs)
    if not (isinstance(node, list) and len(node) in (3, 4) and isinstance(node[0], str)):
        raise ModelFileError(path, f"{where}: malformed op node {_short(node)}")
    kwargs = node[3] if len(node) > 3 and isinstance(node[3], dict) else {}
    first = node[2] if node[0] == "_CONSTANT_VALUE" else _tensor(node)
    return first, dict(kwargs)


def _matmul(a, b, kwargs, where, path):
    """(op, arguments, op config) of ``tf.matmul(a, b, transpose_a=..., transpose_b=...)`` (adjoints of real matrices
    are their transposes): a constant operand is transposed here, two tensors are multiplied as Keras 3's
    ``einsum("...ji,...kj->...ik")`` would."""
    flip = [bool(kwargs.pop(f"transpose_{s}", False)) != bool(kwargs.pop(f"adjoint_{s}", False)) for s in "ab"]
    if not any(flip):
        return "Matmul", [a, b], {}
    operands = [a, b]
    for i, value in enumerate(operands):
        if flip[i] and not _is_tensor(value):
            try:
                matrix = np.asarray(value["config"]["value"] if isinstance(value, dict) else value, dtype=float)
            except (TypeError, ValueError, KeyError) as e:
                raise ModelFileError(path, f"{where}: a constant operand that is not an array of numbers") from e
            if matrix.ndim < 2:
                raise UnsupportedKerasFeature(f"{where}: transposes a constant of {matrix.ndim} axes")
            operands[i] = {"class_name": "__numpy__",
                           "config": {"value": np.swapaxes(matrix, -1, -2).tolist(), "dtype": "float32"}}
            flip[i] = False
    if not any(flip):
        return "Matmul", operands, {}
    if not all(_is_tensor(v) for v in operands):
        raise UnsupportedKerasFeature(f"{where}: transposes a tensor multiplied by a constant; fastgru transposes "
                                      "the constant side only")
    left, right = ("...ji" if flip[0] else "...ij"), ("...kj" if flip[1] else "...jk")
    return "Einsum", operands, {"subscripts": f"{left},{right}->...ik"}


def _is_tensor(value) -> bool:
    return isinstance(value, dict) and value.get("class_name") == "__keras_tensor__"


def _slice_spec(spec, depth=0):
    """tf_keras's slice_spec (dicts for slices, integers, Ellipsis) as Keras 3's GetItem key."""
    if isinstance(spec, dict) and set(spec) <= {"start", "stop", "step"}:
        return {"class_name": "__slice__", "config": {k: spec.get(k) for k in ("start", "stop", "step")}}
    if spec in ("...", "Ellipsis") or (isinstance(spec, dict) and spec.get("class_name") == "__ellipsis__"):
        return {"class_name": "__ellipsis__", "config": {}}
    if isinstance(spec, list) and depth < 8:
        return [_slice_spec(s, depth + 1) for s in spec]
    return spec


def translate(entry, path):
    """The Keras 3 op entry computing what a tf_keras ``TFOpLambda``/``SlicingOpLambda`` entry does (other
    entries are returned as they are)."""
    if not is_tf_op_layer(entry):
        return entry
    config = entry.get("config") if isinstance(entry.get("config"), dict) else {}
    name, function = config.get("name"), config.get("function")
    where = f"layer {name!r} ({entry['class_name']} {function!r})"
    nodes = entry.get("inbound_nodes")
    if not isinstance(nodes, list) or not isinstance(name, str):
        raise ModelFileError(path, f"{where}: malformed op layer")
    op, op_config, converted = None, {"name": name}, []
    for node in nodes:
        first, kwargs = _first(node, where, path)
        args, extra, node_kwargs = [first], {}, {}
        if function == "__operators__.getitem" and entry["class_name"] == "SlicingOpLambda":
            op, args = "GetItem", [first, _slice_spec(kwargs.pop("slice_spec", None))]
        elif _BINARY.get(function):
            op = _BINARY[function]
            args.append(_value(kwargs.pop("x" if function == "math.atan2" else "y", None)))  # (atan2(y, x))
        elif function in ("where", "where_v2", "compat.v1.where"):  # (where(condition, x, y); not its indices form)
            op = "Where"
            args += [_value(kwargs.pop(k, None)) for k in ("x", "y")]
            if any(a is None for a in args[1:]):
                raise UnsupportedKerasFeature(f"{where}: tf.where of a condition alone (its indices) is not "
                                              "supported; fastgru runs tf.where(condition, x, y)")
        elif function == "linalg.matmul":
            op, args, extra = _matmul(first, _value(kwargs.pop("b", None)), kwargs, where, path)
        elif _UNARY.get(function):
            op = _UNARY[function]
            kwargs.pop("x", None)
        elif function in _REDUCTIONS:
            op = _REDUCTIONS[function]
            extra = {"axis": kwargs.pop("axis", None), "keepdims": bool(kwargs.pop("keepdims", False))}
        elif function in _SHAPED:
            op, options = _SHAPED[function]
            for tf_name, (key, default) in options.items():
                extra[key] = kwargs.pop(tf_name, default)
            if function in ("compat.v1.squeeze", "squeeze") and extra["axis"] is None:
                extra["axis"] = kwargs.pop("squeeze_dims", None)
            if op == "Normalize" and isinstance(extra["epsilon"], (int, float)) and extra["epsilon"] > 0:
                extra.update(order=2, epsilon=float(extra["epsilon"]) ** 0.5)
            if op in ("Argmax", "Argmin"):
                extra["keepdims"] = False
            if op == "Split" and isinstance(extra["indices_or_sections"], list):  # (TF's sizes: Keras's cut points)
                sizes = extra["indices_or_sections"]
                if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in sizes):
                    raise UnsupportedKerasFeature(f"{where}: split sizes {_short(sizes)} (known sizes only)")
                extra["indices_or_sections"] = [sum(sizes[:k]) for k in range(1, len(sizes))]
            if op == "Pad":  # (TensorFlow's mode names in capitals; a fill value is the node's keyword)
                extra["mode"] = extra["mode"].lower() if isinstance(extra["mode"], str) else extra["mode"]
                fill = kwargs.pop("constant_values", 0)
                node_kwargs = {} if fill == 0 else {"constant_values": fill}
        elif function in ("gather", "compat.v1.gather"):  # (constant indices along an axis: Keras's take)
            if kwargs.pop("batch_dims", 0) != 0 or kwargs.pop("validate_indices", None) is not None:
                raise UnsupportedKerasFeature(f"{where}: gather with batch_dims or validate_indices")
            op, extra = "Take", {"axis": kwargs.pop("axis", 0)}
            indices = kwargs.pop("indices", None)
            args.append(indices if isinstance(indices, (int, list)) and not _has_ref(indices) else _value(indices))
        elif function == "einsum":  # (tf_keras records the equation and drops the operands: no one can rerun it)
            raise UnsupportedKerasFeature(f"{where}: tf_keras saved tf.einsum's equation without its operands, so "
                                          "the file does not say what it multiplies (tf_keras cannot load it "
                                          "either); use an EinsumDense layer or keras.ops.einsum in Keras 3")
        else:
            raise UnsupportedKerasFeature(
                f"{where}: the tf_keras op layer computes {function!r}, which fastgru does not run (it runs "
                f"{', '.join(FUNCTIONS)}); rewrite it with Keras layers, or save the model from Keras 3")
        odd = {k: v for k, v in kwargs.items() if k != "name" and _HARMLESS.get(k, object()) != v}
        if odd or any(isinstance(a, dict) and a.get("class_name") == "__keras_tensor__" for a in extra.values()):
            raise UnsupportedKerasFeature(f"{where}: called with argument(s) {sorted(odd) or sorted(extra)} that "
                                          "fastgru does not take there")
        op_config.update(extra)
        converted.append({"args": args, "kwargs": node_kwargs})
    module = "keras.src.ops.numpy" if op == "GetItem" else registry.model_class("KerasOp").modules[op]
    return {"module": module, "class_name": op, "config": op_config,
            "name": name, "inbound_nodes": converted}
