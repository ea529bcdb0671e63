"""One GRU problem, set up identically in fastgru, PyTorch, ONNX Runtime and Keras.

Weights are made in Keras's layout (kernel (D, 3H), recurrent_kernel (H, 3H), bias (2, 3H), gates
z, r, h, reset_after=True) and converted for each peer, so that all four compute the same function;
``compare.py`` checks their outputs against fastgru's before it trusts any timing.
Each ``setup_*`` returns ``(run, version)``: ``run()`` computes the last hidden state (B, H) as numpy.
"""

from __future__ import annotations

import numpy as np


def keras_to_torch_gates(m: np.ndarray, axis: int) -> np.ndarray:
    """Keras's z|r|h blocks -> PyTorch's r|z|n along ``axis``."""
    z, r, h = np.split(m, 3, axis=axis)
    return np.concatenate([r, z, h], axis=axis)


# ---- inference --------------------------------------------------------------------------------
def setup_fastgru(x, w, u, b, threads):
    """A fastgru GRU layer called on the batch (the path ``model.predict`` takes)."""
    import fastgru as fg

    fg.set_num_threads(threads)
    layer = fg.layers.GRU(u.shape[0])
    layer.build((None,) + x.shape[1:])
    layer.set_weights([w, u, b])
    return (lambda: layer(x)), fg.__version__


def setup_torch(x, w, u, b, threads):
    import torch

    torch.set_num_threads(threads)
    d, h = w.shape[0], u.shape[0]
    gru = torch.nn.GRU(d, h, batch_first=True)
    with torch.no_grad():
        gru.weight_ih_l0.copy_(torch.from_numpy(keras_to_torch_gates(w, 1).T.copy()))
        gru.weight_hh_l0.copy_(torch.from_numpy(keras_to_torch_gates(u, 1).T.copy()))
        gru.bias_ih_l0.copy_(torch.from_numpy(keras_to_torch_gates(b[0], 0)))
        gru.bias_hh_l0.copy_(torch.from_numpy(keras_to_torch_gates(b[1], 0)))
    xt = torch.from_numpy(x)

    def run():
        with torch.inference_mode():
            _, h_n = gru(xt)
        return h_n[0].numpy()

    return run, torch.__version__


def setup_onnxruntime(x, w, u, b, threads):
    """An ONNX GRU node (gate order z, r, h like Keras; linear_before_reset=1 is reset_after=True)."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    bsz, steps, d = x.shape
    h = u.shape[0]
    inits = [
        numpy_helper.from_array(w.T[None].copy(), "W"),  # (1, 3H, D)
        numpy_helper.from_array(u.T[None].copy(), "R"),  # (1, 3H, H)
        numpy_helper.from_array(np.concatenate([b[0], b[1]])[None].copy(), "B"),  # (1, 6H)
    ]
    node = helper.make_node("GRU", ["X", "W", "R", "B"], ["Y", "Y_h"], hidden_size=h, linear_before_reset=1)
    graph = helper.make_graph(
        [node], "gru", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [steps, bsz, d])],
        [helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, [1, bsz, h])], initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = min(model.ir_version, 10)
    onnx.checker.check_model(model)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    x_tbd = np.ascontiguousarray(x.transpose(1, 0, 2))  # ONNX's (T, B, D) layout, prepared once

    def run():
        return session.run(["Y_h"], {"X": x_tbd})[0][0]

    return run, ort.__version__


def _keras_threads(threads):
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    return tf


def setup_keras(x, w, u, b, threads):
    tf = _keras_threads(threads)
    import keras

    layer = keras.layers.GRU(u.shape[0])
    layer.build((None,) + x.shape[1:])
    layer.set_weights([w, u, b])
    fn = tf.function(lambda t: layer(t), reduce_retracing=True)
    xt = tf.constant(x)

    def run():
        return fn(xt).numpy()

    return run, keras.__version__


# ---- one training step (forward, backward, Adam) ----------------------------------------------
def train_setup_fastgru(x, y, units, head_activation, loss, threads):
    import fastgru as fg
    from fastgru.layers import GRU, Dense, Input

    fg.set_num_threads(threads)
    fg.set_random_seed(0)
    model = fg.Sequential([Input(x.shape[1:]), GRU(units), Dense(1, activation=head_activation)])
    model.compile(optimizer="adam", loss=loss)
    return (lambda: model.train_on_batch(x, y)), fg.__version__


def train_setup_keras(x, y, units, head_activation, loss, threads):
    _keras_threads(threads)
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(x.shape[1:]), keras.layers.GRU(units),
                              keras.layers.Dense(1, activation=head_activation)])
    model.compile(optimizer="adam", loss=loss)
    return (lambda: model.train_on_batch(x, y)), keras.__version__


def train_setup_torch(x, y, units, head_activation, loss, threads):
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    gru = torch.nn.GRU(x.shape[2], units, batch_first=True)
    head = torch.nn.Linear(units, 1)
    params = list(gru.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=1e-3, eps=1e-7)
    loss_fn = torch.nn.BCEWithLogitsLoss() if head_activation == "sigmoid" else torch.nn.MSELoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def run():
        opt.zero_grad(set_to_none=True)
        _, h_n = gru(xt)
        value = loss_fn(head(h_n[0]), yt)
        value.backward()
        opt.step()
        return float(value)

    return run, torch.__version__


INFER = {"fastgru": setup_fastgru, "torch": setup_torch, "onnxruntime": setup_onnxruntime, "keras": setup_keras}
TRAIN = {"fastgru": train_setup_fastgru, "torch": train_setup_torch, "keras": train_setup_keras}
