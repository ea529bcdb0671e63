"""One GRU problem, set up identically in fastgru, PyTorch, ONNX Runtime and Keras (plain and with XLA).

Weights are made in Keras's layout (kernel (D, 3H), recurrent_kernel (H, 3H), bias (2, 3H), gates
z, r, h, reset_after=True) and converted for each peer, so that all four compute the same function;
``compare.py`` checks their outputs against fastgru's before it trusts any timing.
Each ``setup_*`` returns ``(run, version)``: ``run()`` computes the last hidden state (B, H) as numpy.
The training setups take the same initial weights (fastgru/Keras ``get_weights`` order: kernel,
recurrent_kernel, bias, dense kernel, dense bias) and their ``run()`` returns the step's loss, so that
``compare.py --mode train`` can check that the first steps give the same losses everywhere.
A setup raises :class:`Unavailable` when its framework (or the API it needs) is not there.
"""

from __future__ import annotations

import numpy as np


class Unavailable(Exception):
    """The framework is not installed, or lacks the API the benchmark needs: reported as skipped."""


def _import(name: str):
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise Unavailable(f"{name} is not installed ({exc})") from None


def keras_to_torch_gates(m: np.ndarray, axis: int) -> np.ndarray:
    """Keras's z|r|h blocks -> PyTorch's r|z|n along ``axis``."""
    z, r, h = np.split(m, 3, axis=axis)
    return np.concatenate([r, z, h], axis=axis)


# ---- inference --------------------------------------------------------------------------------
def setup_fastgru(x, w, u, b, threads):
    """A fastgru GRU layer called on the batch (the path ``model.predict`` takes)."""
    fg = _import("fastgru")
    fg.set_num_threads(threads)
    layer = fg.layers.GRU(u.shape[0])
    layer.build((None,) + x.shape[1:])
    layer.set_weights([w, u, b])
    return (lambda: layer(x)), fg.__version__


def _torch_threads(threads):
    torch = _import("torch")
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)  # only possible before torch's first parallel work
    except RuntimeError:
        pass
    return torch


def _torch_gru(torch, w, u, b):
    """``torch.nn.GRU`` (batch_first) holding the Keras-layout weights (PyTorch: gates r, z, n, W transposed)."""
    gru = torch.nn.GRU(w.shape[0], u.shape[0], batch_first=True)
    with torch.no_grad():
        gru.weight_ih_l0.copy_(torch.from_numpy(keras_to_torch_gates(w, 1).T.copy()))
        gru.weight_hh_l0.copy_(torch.from_numpy(keras_to_torch_gates(u, 1).T.copy()))
        gru.bias_ih_l0.copy_(torch.from_numpy(keras_to_torch_gates(b[0], 0).copy()))
        gru.bias_hh_l0.copy_(torch.from_numpy(keras_to_torch_gates(b[1], 0).copy()))
    return gru


def setup_torch(x, w, u, b, threads):
    torch = _torch_threads(threads)
    gru = _torch_gru(torch, w, u, b)
    xt = torch.from_numpy(x)

    def run():
        with torch.inference_mode():
            _, h_n = gru(xt)
        return h_n[0].numpy()

    return run, torch.__version__


def setup_onnxruntime(x, w, u, b, threads):
    """An ONNX GRU node (gate order z, r, h like Keras; linear_before_reset=1 is reset_after=True)."""
    onnx = _import("onnx")
    ort = _import("onnxruntime")
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
    """TensorFlow's thread pools, set before TensorFlow initialises its runtime (first op)."""
    tf = _import("tensorflow")
    _import("keras")
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    return tf


def setup_keras(x, w, u, b, threads, jit_compile=False):
    """A Keras 3 GRU layer called through ``tf.function`` (``jit_compile=True``: compiled by XLA)."""
    tf = _keras_threads(threads)
    import keras

    layer = keras.layers.GRU(u.shape[0])
    layer.build((None,) + x.shape[1:])
    layer.set_weights([w, u, b])
    fn = tf.function(lambda t: layer(t), reduce_retracing=True, jit_compile=jit_compile)
    xt = tf.constant(x)

    def run():
        return fn(xt).numpy()

    return run, keras.__version__


def setup_keras_xla(x, w, u, b, threads):
    """Keras with XLA: the layer called through ``tf.function(jit_compile=True)``."""
    return setup_keras(x, w, u, b, threads, jit_compile=True)


# ---- one training step (forward, backward, Adam) ----------------------------------------------
def initial_weights(d: int, units: int, seed: int = 1) -> list[np.ndarray]:
    """GRU(units) + Dense(1) weights in get_weights order, the same for every framework."""
    from fastgru.bench import random_gru_problem

    _, w, u, b = random_gru_problem(1, 1, d, units, seed=seed)
    rng = np.random.default_rng(seed + 1)
    dense_w = (rng.standard_normal((units, 1)) / np.sqrt(units)).astype(np.float32)
    return [w, u, b, dense_w, np.zeros(1, np.float32)]


def train_setup_fastgru(x, y, weights, head_activation, loss, threads):
    fg = _import("fastgru")
    try:
        from fastgru.layers import GRU, Dense, Input

        fg.set_num_threads(threads)
        model = fg.Sequential([Input(x.shape[1:]), GRU(weights[1].shape[0]), Dense(1, activation=head_activation)])
        model.compile(optimizer="adam", loss=loss)
        model.set_weights(weights)
        step = model.train_on_batch
    except (AttributeError, NotImplementedError, ImportError, TypeError) as exc:
        raise Unavailable(f"the fastgru training API is not available yet ({type(exc).__name__}: {exc})") from None
    return (lambda: float(np.ravel(step(x, y))[0])), fg.__version__


def train_setup_keras(x, y, weights, head_activation, loss, threads, jit_compile=False):
    """``compile(optimizer="adam", loss=..., jit_compile=...)`` then ``train_on_batch``. Keras's default,
    ``jit_compile="auto"``, means no XLA on a CPU-only machine; it is spelled out here."""
    _keras_threads(threads)
    import keras

    model = keras.Sequential([keras.Input(x.shape[1:]), keras.layers.GRU(weights[1].shape[0]),
                              keras.layers.Dense(1, activation=head_activation)])
    model.compile(optimizer="adam", loss=loss, jit_compile=jit_compile)
    if bool(model.jit_compile) != jit_compile:
        raise Unavailable(f"Keras set jit_compile={model.jit_compile!r} where {jit_compile!r} was asked for")
    model.set_weights(weights)
    return (lambda: float(np.ravel(model.train_on_batch(x, y))[0])), keras.__version__


def train_setup_keras_xla(x, y, weights, head_activation, loss, threads):
    """Keras with XLA: ``compile(..., jit_compile=True)``, so the whole train step is one XLA program."""
    return train_setup_keras(x, y, weights, head_activation, loss, threads, jit_compile=True)


def train_setup_torch(x, y, weights, head_activation, loss, threads):
    """nn.GRU + nn.Linear; a sigmoid head with binary crossentropy is BCEWithLogitsLoss on the logits.
    Adam with Keras's defaults (lr 1e-3, betas 0.9/0.999, epsilon 1e-7). PyTorch adds epsilon to the
    bias-corrected sqrt(v_hat), Keras to the uncorrected sqrt(v) (an effective epsilon of
    1e-7 / sqrt(1 - beta_2^t)), so from the second step on PyTorch's losses differ from Keras's (and
    fastgru's) by ~1e-4; with eps=1e-7/sqrt(1-0.999) the second losses agree to ~1e-6."""
    torch = _torch_threads(threads)
    w, u, b, dense_w, dense_b = weights
    gru = _torch_gru(torch, w, u, b)
    head = torch.nn.Linear(u.shape[0], 1)
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(dense_w.T.copy()))
        head.bias.copy_(torch.from_numpy(dense_b.copy()))
    params = list(gru.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    if head_activation == "sigmoid" and loss == "binary_crossentropy":
        loss_fn = torch.nn.BCEWithLogitsLoss()
    elif head_activation is None and loss in ("mse", "mean_squared_error"):
        loss_fn = torch.nn.MSELoss()
    else:
        raise ValueError(f"no PyTorch equivalent set up for head {head_activation!r} with loss {loss!r}")
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def run():
        opt.zero_grad(set_to_none=True)
        _, h_n = gru(xt)
        value = loss_fn(head(h_n[0]), yt)
        value.backward()
        opt.step()
        return value.detach().item()

    return run, torch.__version__


INFER = {"fastgru": setup_fastgru, "torch": setup_torch, "onnxruntime": setup_onnxruntime, "keras": setup_keras,
         "keras-xla": setup_keras_xla}
TRAIN = {"fastgru": train_setup_fastgru, "torch": train_setup_torch, "keras": train_setup_keras,
         "keras-xla": train_setup_keras_xla}
