"""Fixes from the forty-second Keras-parity fuzz round and the thirtieth session (each test says what was
wrong)."""

from __future__ import annotations

import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

import fastgru as fg

FIXTURES = Path(__file__).parent / "fixtures" / "files"


@pytest.mark.keras_graph  # tf_keras's Nadam steps otherwise eagerly
@pytest.mark.keras
def test_tf_keras_keras_file_restores_nadam_state(tmp_path):
    """tf_keras's Nadam keeps its momentum product out of its variables, so its ``.keras`` file holds the step
    count and the moments only: fastgru looked for Keras 3's product after them, warned that the state did not
    fit and trained from a fresh optimizer. Now the state is restored (the product restarts at 1, as in
    tf_keras) and training goes on as tf_keras's does, a last batch of another size included."""
    tk = pytest.importorskip("tf_keras")
    tk.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    km = tk.Sequential([tk.layers.Input((5, 3)), tk.layers.GRU(4), tk.layers.Dense(2)])
    km.compile(tk.optimizers.Nadam(0.01), "mse")
    x = rng.normal(size=(14, 5, 3)).astype("float32")
    y = rng.normal(size=(14, 2)).astype("float32")
    km.fit(x, y, epochs=2, batch_size=4, verbose=0)
    km.save(tmp_path / "m.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = fg.load_model(tmp_path / "m.keras")
    assert ours.optimizer.iterations == 8
    km = tk.models.load_model(tmp_path / "m.keras")
    theirs = km.fit(x, y, epochs=3, batch_size=4, shuffle=False, verbose=0).history["loss"]
    mine = ours.fit(x, y, epochs=3, batch_size=4, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(mine, theirs, rtol=1e-5)
    for a, b in zip(ours.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.keras_graph  # (saving a SavedModel traces its functions anyway)
@pytest.mark.keras
def test_tf_keras_saved_model_with_stacked_cells_and_adapted_normalization(tmp_path):
    """Two SavedModel directories fastgru loads from .h5 were refused as if damaged: an ``RNN`` over a stack of
    cells (one layer in the checkpoint, its variables the cells' in turn: "the checkpoint has 2 layers with
    weights, the model has 3") and an adapted ``Normalization`` (its ``count`` an int64 variable: "holds int64
    values, expected floats")."""
    tk = pytest.importorskip("tf_keras")
    tk.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(6, 5, 3)).astype("float32")
    norm = tk.layers.Normalization()
    norm.adapt(x.reshape(-1, 3))
    cells = tk.layers.StackedRNNCells([tk.layers.GRUCell(4), tk.layers.LSTMCell(3)])
    km = tk.Sequential([tk.layers.Input((5, 3)), norm, tk.layers.RNN(cells, return_sequences=True),
                        tk.layers.GRU(2)])
    km.save(tmp_path / "sm", save_format="tf")
    ours = fg.load_model(tmp_path / "sm")
    np.testing.assert_allclose(ours.predict(x), km.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    assert int(ours.layers[0].weights[2]) == 30  # (the adapted count, as tf_keras keeps it)
    ours.set_weights([np.zeros_like(w) for w in ours.get_weights()])
    ours.load_weights(tmp_path / "sm")  # (the stack's layers filled from its one checkpoint layer here too)
    np.testing.assert_allclose(ours.predict(x), km.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


@pytest.mark.keras
@pytest.mark.parametrize("source", ["tf_keras", "keras"])
def test_stack_of_cells_with_a_frozen_cell(source, tmp_path):
    """A stack of cells whose first cell is frozen: the RNN layer lists its trainable cells' weights first (in a
    legacy .h5 and a SavedModel), which fastgru read in cell order ("weight rnn ('rnn_gru_cell'.kernel) has shape
    (4, 12), but the config implies (3, 12)"; with as many inputs as units, the cells' weights swapped)."""
    K = pytest.importorskip(source)
    K.utils.set_random_seed(0)
    frozen = K.layers.GRUCell(4)
    frozen.trainable = False
    km = K.Sequential([K.layers.Input((5, 3)), K.layers.RNN(K.layers.StackedRNNCells([frozen, K.layers.LSTMCell(3)])),
                       K.layers.Dense(2)])
    x = np.random.default_rng(0).normal(size=(4, 5, 3)).astype("float32")
    expected = km.predict(x, verbose=0)
    km.save(tmp_path / "m.h5")
    paths = [tmp_path / "m.h5"]
    if source == "tf_keras":
        km.save(tmp_path / "sm", save_format="tf")
        paths.append(tmp_path / "sm")
    for path in paths:
        ours = fg.load_model(path)
        assert [layer.trainable for layer in ours.layers] == [False, True, True]
        np.testing.assert_allclose(ours.predict(x), expected, rtol=1e-5, atol=1e-6)


def _trained_model(path):
    rng = np.random.default_rng(0)
    model = fg.Sequential([fg.layers.Input((5, 3)), fg.layers.GRU(4), fg.layers.Dense(2)])
    model.compile(fg.optimizers.Adam(0.01), "mse")
    model.fit(rng.normal(size=(8, 5, 3)), rng.normal(size=(8, 2)), epochs=1, batch_size=4, verbose=0)
    model.save(path)
    return model


def _rewrite_keras_weights(src, dst, mutate):
    import io
    import zipfile

    import h5py

    with zipfile.ZipFile(src) as z:
        members = {n: z.read(n) for n in z.namelist()}
    buffer = io.BytesIO(members["model.weights.h5"])
    with h5py.File(buffer, "r+") as f:
        mutate(f)
    members["model.weights.h5"] = buffer.getvalue()
    with zipfile.ZipFile(dst, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)


def _replace(f, name, **kwargs):
    del f[name]
    f.create_dataset(name, **kwargs)


def test_optimizer_state_is_read_as_the_weights_are(tmp_path):
    """A hostile file (forty-second round, security audit): the optimizer's state was read straight through h5py,
    past the checks every weight goes through, so with ``compile=True`` (the default) a slot stored externally
    read another file on disk into the optimizer (and ``model.save`` wrote it into the next file), a FIFO hung
    the load, a virtual dataset mapped another file, and a never-written (10⁵, 10⁵) slot or a gzip bomb took
    gigabytes. Now those are refused as for weights (ModelFileError), and an array larger than any weight is
    left out with a warning (the model still loads)."""
    import h5py

    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"TOPSECRET-0123456789")
    _trained_model(tmp_path / "m.keras")
    _rewrite_keras_weights(tmp_path / "m.keras", tmp_path / "ext.keras", lambda f: _replace(
        f, "optimizer/vars/10", shape=(2,), dtype="<f4", external=[(str(secret), 0, 8)]))
    with pytest.raises(fg.ModelFileError, match="external storage"):
        fg.load_model(tmp_path / "ext.keras")
    assert fg.load_model(tmp_path / "ext.keras", compile=False).predict(np.zeros((1, 5, 3))).shape == (1, 2)

    def virtual(f):
        with h5py.File(tmp_path / "other.h5", "w") as other:
            other["x"] = np.ones(2, np.float32)
        layout = h5py.VirtualLayout(shape=(2,), dtype="<f4")
        layout[:] = h5py.VirtualSource(str(tmp_path / "other.h5"), "x", shape=(2,))
        del f["optimizer/vars/10"]
        f.create_virtual_dataset("optimizer/vars/10", layout)

    _rewrite_keras_weights(tmp_path / "m.keras", tmp_path / "vds.keras", virtual)
    with pytest.raises(fg.ModelFileError, match="virtual dataset"):
        fg.load_model(tmp_path / "vds.keras")
    for name, kwargs in (("huge", {"shape": (100_000, 100_000), "chunks": (1000, 1000), "fillvalue": 1.0}),
                         ("bomb", {"data": np.zeros((4000, 4000), np.float32), "compression": "gzip"})):
        _rewrite_keras_weights(tmp_path / "m.keras", tmp_path / f"{name}.keras",
                               lambda f, kw=kwargs: _replace(f, "optimizer/vars/10", dtype="<f4", **kw))
        with pytest.warns(UserWarning, match="no larger than a weight"):
            model = fg.load_model(tmp_path / f"{name}.keras")
        assert model.optimizer.iterations == 0  # (the state left out: the optimizer starts afresh)

    # a legacy .h5: its optimizer_weights, read whatever the training config says
    shutil.copy(FIXTURES / "k2_simple_rnn.h5", tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5", "r+") as f:
        group = f.create_group("optimizer_weights")
        group.attrs["weight_names"] = [b"Adam/iter:0"]
        group.create_dataset("Adam/iter:0", shape=(1,), dtype="<i8", external=[(str(secret), 0, 8)])
    with pytest.raises(fg.ModelFileError, match="external storage"):
        fg.load_model(tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5", "r+") as f:  # (a long list of names comes in chunks: still read)
        group = f["optimizer_weights"]
        del group.attrs["weight_names"], group["Adam/iter:0"]
        group.attrs["weight_names0"], group.attrs["weight_names1"] = [b"Adam/iter:0"], [b"Adam/x:0"]
        group["Adam/iter:0"], group["Adam/x:0"] = np.int64(3), np.float32(1.0)
    from fastgru.io import optimizer_state

    model = fg.load_model(tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5") as f:
        names, arrays = optimizer_state.read_tf_keras(f, model, "m.h5")
    assert names == ["Adam/iter:0", "Adam/x:0"] and int(arrays[0]) == 3
    with h5py.File(tmp_path / "m.h5", "r+") as f:
        f["optimizer_weights"].attrs["weight_names"] = np.array([5])
    with pytest.warns(UserWarning, match="should list names"):
        assert fg.load_model(tmp_path / "m.h5").layers  # (a damaged list of names: the state left out)


def test_load_weights_changes_nothing_when_a_later_layer_is_refused(tmp_path):
    """``load_weights`` of a Keras 3 weights file filled the layers one by one: a NaN (or a wrong shape, a missing
    group) at the Dense left the GRU before it overwritten, against its "every weight or none" promise."""
    model = _trained_model(tmp_path / "m.keras")
    model.save_weights(tmp_path / "w.weights.h5")
    import h5py

    with h5py.File(tmp_path / "w.weights.h5", "r+") as f:
        f["layers/gru/cell/vars/0"][...] += 1.0
        bias = f["layers/dense/vars/1"]
        bias[...] = np.nan
    before = [w.copy() for w in model.weights]
    with pytest.raises(fg.ModelFileError, match=r"'dense(_\d+)?'.bias\) contains NaN"):
        model.load_weights(tmp_path / "w.weights.h5")
    for a, b in zip(model.weights, before):
        np.testing.assert_array_equal(a, b)
    # a TF-IDF layer's weights (kept by name, outside model.weights) too
    tokens = fg.layers.StringLookup(vocabulary=["a", "b"], idf_weights=[1.0, 2.0], output_mode="tf_idf")
    model = fg.Sequential([fg.layers.Input((2,), dtype="string"), tokens, fg.layers.Dense(1)])
    model.save_weights(tmp_path / "t.weights.h5")
    with h5py.File(tmp_path / "t.weights.h5", "r+") as f:
        f["layers/string_lookup/vars/idf_weights"][...] = 9.0
        f["layers/dense/vars/1"][...] = np.nan
    idf = np.array(tokens.keras_own_variables()["idf_weights"])
    with pytest.raises(fg.ModelFileError, match="contains NaN"):
        model.load_weights(tmp_path / "t.weights.h5")
    np.testing.assert_array_equal(tokens.keras_own_variables()["idf_weights"], idf)


def test_legacy_weight_errors_name_the_weight_at_fault(tmp_path):
    """A NaN in a legacy .h5's Dense bias was reported as "weight dense/dense/kernel:0 ('dense'.bias)", naming the
    layer's first weight."""
    import h5py

    shutil.copy(FIXTURES / "k2_simple_rnn.h5", tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5", "r+") as f:
        f["model_weights/dense/dense/bias:0"][...] = np.nan
    with pytest.raises(fg.ModelFileError, match=r"weight dense \('dense'.bias\) contains NaN"):
        fg.load_model(tmp_path / "m.h5")


def test_lookup_sizes_from_a_config_are_bounded():
    """Integers of a text layer's config alone took gigabytes while loading (forty-second round, security audit):
    StringLookup's ``num_oov_indices=10**8`` (a list of that many OOV tokens, built to compare a vocabulary's
    start), ``output_mode="tf_idf"`` with ``pad_to_max_tokens`` and ``max_tokens=10**8`` (the weights padded to
    it), TextVectorization's ``ngrams=10**7`` (a tuple of widths). Now the first costs nothing, the others are
    refused by name."""
    layer = fg.layers.StringLookup(vocabulary=["a", "b"], num_oov_indices=10**8)
    ids = np.asarray(layer(np.array([["a", "z"]])))
    assert ids[0, 0] == 10**8 and 0 <= ids[0, 1] < 10**8  # ("z" hashed to one of the OOV indices)
    with pytest.raises(fg.UnsupportedKerasFeature, match="encodes at most 16777216 per row"):
        fg.layers.StringLookup(vocabulary=["a"], idf_weights=[1.0], output_mode="tf_idf", max_tokens=10**8,
                               pad_to_max_tokens=True)
    inverse = fg.layers.IntegerLookup(vocabulary=[5, 6], num_oov_indices=10**12, invert=True)
    np.testing.assert_array_equal(inverse(np.array([[10**12, 10**12 + 1, 3, 0]])), [[5, 6, -1, -1]])
    with pytest.raises(ValueError, match=r"the mask token '' is in the vocabulary.*\['', '\[UNK\]'.*\.\.\."):
        fg.layers.StringLookup(num_oov_indices=10**12, mask_token="", vocabulary=["a", ""])
    with pytest.raises(fg.UnsupportedKerasFeature, match="n-grams of at most 1024"):
        fg.layers.TextVectorization(ngrams=10**7)
    assert fg.layers.TextVectorization(ngrams=3).ngrams == (1, 2, 3)


def test_stateful_fit_refuses_a_batch_of_another_size_before_training():
    """A stateful model built for batches of 8, fit on 44 samples (or with a validation split of 12), failed at the
    last batch of 4 (as Keras does) after the batches before it had trained, and its message said "predict with
    batch_size=8". Now fit and evaluate refuse it before anything runs, and the layers have Keras 3's
    ``reset_state()``."""
    rng = np.random.default_rng(0)
    model = fg.Sequential([fg.layers.Input(batch_shape=(8, 5, 3)), fg.layers.GRU(4, stateful=True),
                           fg.layers.Dense(1)])
    model.compile("adam", "mse")
    x, y = rng.normal(size=(52, 5, 3)), rng.normal(size=(52, 1))
    before = [w.copy() for w in model.get_weights()]
    for kwargs, match in (({"x": x[:44], "y": y[:44]}, "^fit: .*44 samples .* a last batch of 4"),
                          ({"x": x[:48], "y": y[:48], "validation_split": 0.25}, "^fit: .*36 samples"),
                          ({"x": x, "y": y, "validation_split": 0.23}, "^fit's validation data: .*12 samples"),
                          ({"x": x[:48], "y": y[:48], "batch_size": 16}, "give it batches of 16"),
                          ({"x": x[:44], "y": y[:44], "steps_per_epoch": 3, "epochs": 2}, "a last batch of 4"),
                          ({"x": x[:40], "y": y[:40], "validation_data": (x[:4], y[:4])}, "validation data")):
        with pytest.raises(ValueError, match=match):
            model.fit(batch_size=kwargs.pop("batch_size", 8), epochs=kwargs.pop("epochs", 1), verbose=0, **kwargs)
    with pytest.raises(ValueError, match="evaluate: .* batches of 32"):
        model.evaluate(x[:48], y[:48], verbose=0)
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)
    assert not np.any(model.layers[0].states)  # (zeros: nothing carried)
    # batches that never reach the short last one are taken, as in Keras; no epoch to run checks nothing
    model.evaluate(x[:44], y[:44], batch_size=8, steps=5, verbose=0)
    model.fit(x[:44], y[:44], batch_size=8, steps_per_epoch=2, epochs=2, verbose=0, shuffle=False)
    model.fit(x[:8], y[:8], batch_size=8, epochs=1, verbose=0, validation_data=(x[:12], y[:12]), validation_steps=1)
    model.fit(x[:44], y[:44], batch_size=8, epochs=0, verbose=0)
    model.reset_states()
    model.fit(x[:16], y[:16], batch_size=8, epochs=1, verbose=0, shuffle=False)
    assert model.layers[0].states is not None
    model.layers[0].reset_state()
    assert not np.any(model.layers[0].states)  # (zeros: nothing carried)
    with pytest.raises(ValueError, match=r"pass batch_size=8"):
        model.predict(x[:4])


def test_saving_non_finite_weights_warns():
    """A fit that diverged left NaN weights: ``save`` wrote them silently and ``load_model`` then refused fastgru's
    own file as damaged. The file is still written (Keras loads it), with a warning saying why it will be
    refused."""
    import tempfile

    model = fg.Sequential([fg.layers.Input((3,)), fg.layers.Dense(2)])
    model.layers[0].weights[1][0] = np.nan
    with tempfile.TemporaryDirectory() as folder:
        for save, name in ((model.save, "m.keras"), (model.save_weights, "m.weights.h5")):
            with pytest.warns(UserWarning, match="1 of the model's weights hold NaN"):
                save(f"{folder}/{name}")
        with pytest.raises(fg.ModelFileError, match="NaN"):
            fg.load_model(f"{folder}/m.keras")


@pytest.mark.keras
def test_weights_no_gradient_reaches_are_left_alone(keras, tmp_path):
    """A branch that feeds only an output without a loss (``loss=["mse", None]``) has no gradient in Keras, whose
    optimizer then leaves its weights alone; fastgru gave them zero gradients, so AdamW's weight decay shrank
    them (and momentum would have moved them). Now they get none; a regularized one gets its penalty's
    gradient alone, as in Keras."""
    L = keras.layers
    keras.utils.set_random_seed(0)
    inputs = L.Input((5, 3))
    h = L.GRU(4)(inputs)
    side = L.Dense(3, name="side", kernel_regularizer="l2")(L.Flatten()(inputs))
    km = keras.Model(inputs, [L.Dense(1, name="a")(h), L.Dense(2, name="b")(L.Dense(3, name="bh")(inputs[:, -1])),
                              L.Dense(1, name="c")(side)])
    km.compile(keras.optimizers.AdamW(0.01, weight_decay=0.1), loss=["mse", None, None])
    km.save(tmp_path / "m.keras")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 5, 3)).astype("float32")
    y = [rng.normal(size=(16, 1)).astype("float32"), np.zeros((16, 2), "float32"), np.zeros((16, 1), "float32")]
    ours, km = fg.load_model(tmp_path / "m.keras"), keras.models.load_model(tmp_path / "m.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (Keras: "Gradients do not exist for variables ...")
        theirs = km.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history["loss"]
    mine = ours.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(mine, theirs, rtol=1e-5)
    for a, b, v in zip(ours.get_weights(), km.get_weights(), km.weights):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=v.path)


@pytest.mark.parametrize("axis", [1, -1])
def test_masked_batch_normalization_gradients_on_any_axis(axis):
    """``BatchNormalization(axis=1)`` behind a mask (forty-third round) trained in Keras, whose masked statistics
    broadcast the mask over the last axis whichever axis is normalized; fastgru refused the mask in training
    ("a mask must have the input's shape without its last (feature) axis"). Its masked statistics and their
    gradients, against central differences in float64."""
    from gradcheck import numeric_gradient

    rng = np.random.default_rng(0)
    layer = fg.layers.BatchNormalization(axis=axis, dtype="float64")
    x = rng.normal(size=(3, 5, 4))
    layer.build(x.shape)
    layer.set_weights([rng.uniform(0.5, 1.5, w.shape) for w in layer.get_weights()])
    mask = np.ones((3, 5), bool)
    mask[0, 3:] = mask[2, :2] = False
    y, cache = layer.forward(x, mask=mask, training=True)
    w = np.broadcast_to(mask[..., None], x.shape)
    axes = tuple(a for a in range(3) if a != axis % 3)
    mean = (x * w).sum(axis=axes, keepdims=True) / (w.sum(axis=axes, keepdims=True) + 1e-7)
    variance = (np.square(x - mean) * w).sum(axis=axes, keepdims=True) / (w.sum(axis=axes, keepdims=True) + 1e-7)
    gamma, beta = (p.reshape([-1 if a == axis % 3 else 1 for a in range(3)]) for p in layer.get_weights()[:2])
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(variance + 1e-3) * gamma + beta, rtol=1e-10)
    coef = rng.standard_normal(y.shape)
    dx, grads = layer.backward(coef, cache)
    np.testing.assert_allclose(dx, numeric_gradient(lambda v: layer.call(v, mask=mask, training=True), x, coef),
                               rtol=1e-5, atol=1e-7)
    for weight, g in zip(layer.trainable_weights, grads):
        def f(value, weight=weight):
            saved = weight.copy()
            weight[...] = value
            try:
                return layer.call(x, mask=mask, training=True)
            finally:
                weight[...] = saved
        np.testing.assert_allclose(g, numeric_gradient(f, weight.copy(), coef), rtol=1e-5, atol=1e-7)


@pytest.mark.keras
def test_masked_batch_normalization_on_the_time_axis_trains_as_keras(keras, tmp_path):
    L = keras.layers
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 12, 4)).astype("float32")
    x[::3, 8:] = 0.0
    y = rng.normal(size=(32, 2)).astype("float32")
    km = keras.Sequential([L.Input((12, 4)), L.Masking(0.0), L.BatchNormalization(axis=1), L.GRU(5), L.Dense(2)])
    km.compile("adam", "mse")
    km.save(tmp_path / "m.keras")
    ours, km = fg.load_model(tmp_path / "m.keras"), keras.models.load_model(tmp_path / "m.keras")
    theirs = km.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(ours.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0).history["loss"],
                               theirs, rtol=1e-5)
    for a, b in zip(ours.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_inputs_are_converted_to_the_declared_input_dtype():
    """Keras converts each input to its ``Input``'s dtype: an ``int32`` Input fed floats takes them truncated toward
    zero, a bool one whether each is nonzero, a float16 one rounds them (forty-fourth round: fastgru computed on the
    raw floats, up to 1.0 away). A value an integer Input cannot hold is refused, where Keras wraps it around."""
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(3, 5, 2)) * 3).astype("float32")
    for dtype, expected in (("int32", np.trunc(x)), ("bool", (x != 0).astype("float32")),
                            ("float16", x.astype("float16").astype("float32"))):
        fg.set_random_seed(0)
        inputs = fg.Input((5, 2), dtype=dtype)
        model = fg.Model(inputs, fg.layers.Dense(1)(fg.layers.GRU(3)(inputs)))
        np.testing.assert_array_equal(model.predict(x), model.predict(expected))
        sequential = fg.Sequential([fg.layers.Input((5, 2), dtype=dtype), fg.layers.GRU(3)])
        np.testing.assert_array_equal(sequential.predict(x), sequential.predict(expected))
    with pytest.raises(ValueError, match=r"declared uint8: its values must lie in \[0, 255\]"):
        fg.Sequential([fg.layers.Input((5, 2), dtype="uint8"), fg.layers.GRU(3)]).predict(x)
    with pytest.raises(ValueError, match="cannot take NaN"):
        fg.Sequential([fg.layers.Input((5, 2), dtype="int32"), fg.layers.GRU(3)]).predict(np.full((1, 5, 2), np.nan))


def test_float64_layers_compute_in_float64_whatever_the_input():
    """A float64 layer (Keras's float64 policy) fed float32 data computed in float32 and returned float32, 1e-7 from
    Keras, which casts the input up; now it computes in float64, bit for bit as with float64 data."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 4, 5)).astype("float32")
    for layer in (fg.layers.GRU(3, dtype="float64"), fg.layers.LSTM(3, dtype="float64"),
                  fg.layers.Dense(3, dtype="float64"), fg.layers.Conv1D(3, 2, dtype="float64"),
                  fg.layers.LayerNormalization(dtype="float64")):
        out = layer(x)
        assert out.dtype == np.float64, type(layer).__name__
        np.testing.assert_array_equal(out, layer(x.astype("float64")))
    assert fg.layers.Dense(3)(x).dtype == np.float32


def test_get_layer_and_dtype_arguments_are_checked():
    """``get_layer(name=..., index=...)`` silently took the index, ``get_layer(index=5)`` was a bare IndexError;
    a Keras dtype policy given to a layer (``"mixed_float16"``, a ``DTypePolicy``) a bare NumPy TypeError."""
    model = fg.Sequential([fg.layers.Input((3,)), fg.layers.Dense(2, name="d")])
    with pytest.raises(ValueError, match="provide only a layer name or a layer index"):
        model.get_layer("d", 0)
    with pytest.raises(ValueError, match="asked for layer index 5, but it has 1 layers"):
        model.get_layer(index=5)
    with pytest.raises(ValueError, match="provide either a layer name or a layer index"):
        model.get_layer()
    assert model.get_layer(index=-1).name == "d"
    with pytest.warns(UserWarning, match="fastgru computes in float32"):
        assert fg.layers.GRU(4, dtype="mixed_float16").dtype == np.float32

    class Policy:  # (what matters of a Keras DTypePolicy)
        name = "float64"

    assert fg.layers.Dense(4, dtype=Policy()).dtype == np.float64
    with pytest.raises(TypeError, match="dtype must be 'float32' or 'float64'.*received 'int8'"):
        fg.layers.Dense(4, dtype="int8")


@pytest.mark.keras
def test_bfloat16_weights_load(keras, tmp_path):
    """Keras 3 writes a bfloat16 variable as a 2-byte opaque HDF5 dataset tagged ``dtype="bfloat16"``: it was
    refused ("has dtype |V2, expected floats"), and from_keras refused the arrays; the documented behaviour is to
    load them (widened to float32, exactly) and compute in float32, with a warning."""
    L = keras.layers
    keras.utils.set_random_seed(0)
    km = keras.Sequential([L.Input((10, 4)), L.GRU(8, dtype="bfloat16", recurrent_initializer="glorot_uniform"),
                           L.Dense(1, dtype="bfloat16")])
    km.save(tmp_path / "m.keras")
    x = np.random.default_rng(0).normal(size=(4, 10, 4)).astype("float32")
    expected = np.asarray(km.predict(x, verbose=0), np.float32)
    for ours in (fg.load_model(tmp_path / "m.keras"), fg.from_keras(km)):
        for a, b in zip(ours.get_weights(), km.get_weights()):
            np.testing.assert_array_equal(a, np.asarray(b, np.float32))
        np.testing.assert_allclose(ours.predict(x), expected, rtol=2e-2, atol=1e-2)  # (Keras rounds to bfloat16)


@pytest.mark.keras
def test_summary_totals_are_keras_s(keras, tmp_path):
    """``summary()``'s totals counted 4 bytes a parameter and no optimizer: Keras's list the bytes by dtype and, for a
    model loaded compiled (or trained), an "Optimizer params" line included in the total."""
    import contextlib
    import io

    L = keras.layers
    for optimizer in ("adam", keras.optimizers.Nadam(), keras.optimizers.Adam(use_ema=True)):
        km = keras.Sequential([L.Input((5, 3)), L.GRU(4), L.BatchNormalization(), L.Dense(2, dtype="float64")])
        km.compile(optimizer, "mse")
        km.save(tmp_path / "m.keras")
        km = keras.models.load_model(tmp_path / "m.keras")
        theirs = io.StringIO()
        km.summary(print_fn=lambda line, line_break=True: theirs.write(line))
        mine = io.StringIO()
        with contextlib.redirect_stdout(mine):
            fg.load_model(tmp_path / "m.keras").summary()
        totals = [[line.strip() for line in text.getvalue().splitlines() if " params: " in line]
                  for text in (theirs, mine)]
        assert totals[0] == totals[1] and len(totals[0]) == 4
    model = fg.Sequential([fg.layers.Input((3,)), fg.layers.Dense(2)])
    model.compile("sgd", "mse")
    mine = io.StringIO()
    with contextlib.redirect_stdout(mine):
        model.summary()  # (compiled in code, not trained: Keras's optimizer is not built yet)
    assert "Optimizer params" not in mine.getvalue() and "Total params: 8 (32.00 B)" in mine.getvalue()


@pytest.mark.keras
def test_from_keras_of_an_unbuilt_model_says_to_build_it(keras):
    """An unbuilt Keras Sequential was refused as a file would be ("the model config gives no input shape"), a
    ModelFileError about a config for a live model."""
    with pytest.raises(ValueError, match=r"is not built.*call its build\(input_shape\)"):
        fg.from_keras(keras.Sequential([keras.layers.GRU(3), keras.layers.Dense(1)]))


class _Batches:
    """A PyDataset-like stream (what matters: its class name in the MRO, __len__ and __getitem__)."""

    def __init__(self, x, y, size):
        self.x, self.y, self.size = x, y, size

    def __len__(self):
        return -(-len(self.x) // self.size)

    def __getitem__(self, i):
        part = slice(i * self.size, (i + 1) * self.size)
        return self.x[part], self.y[part]


class Sequence(_Batches):  # (the name Keras 2's utils.Sequence has)
    pass


def test_fit_evaluate_and_predict_read_streams():
    """keras.io's tutorials feed a dataset (``timeseries_dataset_from_array``), a PyDataset or a generator straight
    into fit; fastgru refused every stream (forty-fifth round). Now their batches are read into arrays, the batch
    boundaries kept: the same numbers as the arrays cut at the stream's batch size, unshuffled."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(20, 5, 3)).astype("float32"), rng.normal(size=(20, 1)).astype("float32")

    def model():
        fg.set_random_seed(0)
        m = fg.Sequential([fg.layers.Input((5, 3)), fg.layers.GRU(4), fg.layers.Dense(1)])
        m.compile("adam", "mse")
        return m

    reference = model().fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0,
                            validation_data=(x[:12], y[:12]), validation_batch_size=6).history
    streamed = model()
    history = streamed.fit(Sequence(x, y, 8), epochs=2, verbose=0, shuffle=False,  # (True: its batches shuffled)
                           validation_data=Sequence(x[:12], y[:12], 6)).history
    assert history == reference
    np.testing.assert_array_equal(streamed.predict(Sequence(x, y, 8)), streamed.predict(x, batch_size=8))
    assert streamed.evaluate(Sequence(x, y, 8), verbose=0) == streamed.evaluate(x, y, batch_size=8, verbose=0)

    def endless():
        while True:
            yield x[:8], y[:8], np.ones(8, "float32")

    a, b = model(), model()
    a.fit(endless(), steps_per_epoch=3, epochs=2, verbose=0)
    b.fit(np.concatenate([x[:8]] * 6), np.concatenate([y[:8]] * 6), batch_size=8, epochs=2, steps_per_epoch=3,
          shuffle=False, verbose=0)
    for p, q in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(p, q)
    with pytest.raises(ValueError, match="batches have sizes \\[8, 4, 8\\]"):
        model().fit(iter([(x[:8], y[:8]), (x[:4], y[:4]), (x[:8], y[:8])]), steps_per_epoch=3, verbose=0)
    # several inputs, as a dict
    inputs = {"a": fg.Input((5, 3), name="a"), "b": fg.Input((2,), name="b")}
    merged = fg.layers.Concatenate()([fg.layers.GRU(4)(inputs["a"]), inputs["b"]])
    graph = fg.Model(inputs, fg.layers.Dense(1)(merged))
    extra = rng.normal(size=(20, 2)).astype("float32")
    stream = iter([({"a": x[i:i + 10], "b": extra[i:i + 10]},) for i in (0, 10)])
    np.testing.assert_array_equal(graph.predict(stream, steps=2), graph.predict({"a": x, "b": extra}, batch_size=10))


@pytest.mark.keras_graph  # (many steps: faster against the graph)
@pytest.mark.keras
def test_tf_data_datasets_train_as_in_keras(keras, tmp_path):
    """The weather tutorial's pipeline: ``timeseries_dataset_from_array`` for training and validation, straight
    into fit, evaluate and predict."""
    L = keras.layers
    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    series, target = rng.normal(size=(200, 3)).astype("float32"), rng.normal(size=(200,)).astype("float32")
    km = keras.Sequential([L.Input((10, 3)), L.GRU(5), L.Dense(1)])
    km.compile("adam", "mse")
    km.save(tmp_path / "m.keras")
    ours, km = fg.load_model(tmp_path / "m.keras"), keras.models.load_model(tmp_path / "m.keras")
    train = keras.utils.timeseries_dataset_from_array(series[:150], target[9:159], sequence_length=10, batch_size=16)
    val = keras.utils.timeseries_dataset_from_array(series[150:190], target[159:199], sequence_length=10,
                                                    batch_size=16)
    theirs = km.fit(train, validation_data=val, epochs=2, verbose=0).history
    mine = ours.fit(train, validation_data=val, epochs=2, verbose=0).history
    for key in theirs:
        np.testing.assert_allclose(mine[key], theirs[key], rtol=1e-5, err_msg=key)
    np.testing.assert_allclose(ours.evaluate(val, verbose=0), km.evaluate(val, verbose=0), rtol=1e-5)
    np.testing.assert_allclose(ours.predict(val), km.predict(val, verbose=0), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="the dataset repeats forever"):
        ours.fit(train.repeat(), epochs=1, verbose=0)


def test_stream_misreadings_are_refused():
    """Forty-sixth round, on the new stream reading: an element whose x and y are batched differently was
    re-paired silently, a stream of scalars a bare TypeError; validation_split and predict_on_batch took a stream
    (Keras refuses both), a validation stream was cut again at ``validation_batch_size``, a PyDataset with only
    ``num_batches`` was taken for an endless generator; batches of different lengths said nothing of padding."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(24, 5, 3)).astype("float32"), rng.normal(size=(24, 1)).astype("float32")
    fg.set_random_seed(0)
    model = fg.Sequential([fg.layers.Input((None, 3)), fg.layers.GRU(4), fg.layers.Dense(1)])
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match=r"holds batches of sizes \[7, 8\]"):
        model.fit(iter([(x[:8], y[:7])]), steps_per_epoch=1, verbose=0)
    with pytest.raises(ValueError, match="no batch axis"):
        model.predict(iter([np.float32(1.0)]), steps=1)
    with pytest.raises(ValueError, match="validation_split` is only supported for arrays"):
        model.fit(Sequence(x, y, 8), validation_split=0.2, verbose=0)
    with pytest.raises(TypeError, match="predict_on_batch .* takes arrays here"):
        model.predict_on_batch(Sequence(x, y, 8))
    with pytest.raises(ValueError, match="padded_batch pads each batch"):
        model.fit(iter([(x[:8], y[:8]), (x[8:16, :3], y[8:16])]), steps_per_epoch=2, verbose=0)
    # (predict takes them one by one, as Keras's predict: tests/test_fuzz52_fixes.py)
    np.testing.assert_array_equal(model.predict(iter([x[:8], x[8:16, :3]]), steps=2),
                                  np.concatenate([model.predict(x[:8]), model.predict(x[8:16, :3])]))
    history = model.fit(Sequence(x, y, 8), epochs=1, verbose=0, shuffle=False, validation_batch_size=4,
                        validation_data=Sequence(x[:12], y[:12], 6), validation_steps=2).history
    reference = model.evaluate(x[:12], y[:12], batch_size=6, verbose=0)  # (cut at the stream's 6, not at 4)
    assert history["val_loss"] == [pytest.approx(reference, rel=1e-6)]

    class PyDataset:  # (only num_batches, as a Keras PyDataset may define it)
        num_batches = 3

        def __getitem__(self, i):
            return x[i * 8:(i + 1) * 8], y[i * 8:(i + 1) * 8]

    np.testing.assert_array_equal(model.predict(PyDataset()), model.predict(x, batch_size=8))
    class EndlessPyDataset(PyDataset):  # (num_batches None: read once, for the steps drawn)
        num_batches = None

        def __getitem__(self, i):
            return x[(i % 3) * 8:(i % 3 + 1) * 8], y[(i % 3) * 8:(i % 3 + 1) * 8]

    with pytest.warns(UserWarning, match="reads an endless PyDataset once, in the order of its indices"):
        model.fit(EndlessPyDataset(), epochs=1, steps_per_epoch=3, verbose=0)  # (Keras shuffles its batch order)


def test_forty_seventh_round_fixes():
    """An integer Input's bound for float data compared in the float's precision (2^31 passed an int32 Input,
    wrapping); a float64 GlobalAveragePooling1D averaged float32 data in float32; Muon's paths left out a recurrent
    layer's cell, which Keras's hold (``exclude_layers=["gru_cell"]`` matched nothing)."""
    from fastgru.input_casts import cast_to_declared
    from fastgru.training.apply_step import variable_paths

    for value, dtype in ((32768, np.float16), (2.0**31, np.float32), (2.0**63, np.float64)):
        with pytest.raises(ValueError, match="its values must lie in"):
            cast_to_declared(np.array([value], dtype), {np.float16: "int16", np.float32: "int32"}.get(dtype, "int64"),
                             "x")
    assert cast_to_declared(np.array([32767.0], np.float32), "int16", "x").tolist() == [32767]
    x = (np.arange(6, dtype=np.float32)[None, :, None] / 7 + 1000)
    pooled = fg.layers.GlobalAveragePooling1D(dtype="float64")(x)
    assert pooled.dtype == np.float64 and pooled[0, 0] == x.astype(np.float64).mean()
    model = fg.Sequential([fg.layers.Input((5, 3)), fg.layers.Bidirectional(fg.layers.GRU(2), name="bi"),
                           fg.layers.Dense(1, name="out")])
    paths = variable_paths(model, model.trainable_weights)  # (the inner GRU's name depends on the GRUs made before)
    assert re.fullmatch(r"bi/forward_gru(_\d+)?/gru_cell/kernel", paths[0]) and paths[-1] == "out/bias", paths
    optimizer = fg.optimizers.Muon(exclude_layers=["gru_cell"])
    model.compile(optimizer, "mse")
    model.train_on_batch(np.zeros((2, 5, 3)), np.zeros((2, 1)))
    assert [sorted(s) for s in optimizer.slots][:2] == [["momentum", "velocity"]] * 2  # (the GRU's: AdamW's)
