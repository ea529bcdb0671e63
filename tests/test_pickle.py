"""Pickling models and layers as configuration + weights (fastgru._pickle): round trips in this process
and in a fresh one, compile configuration, no compiled code in the bytes, the global generator untouched."""

from __future__ import annotations

import copy
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import fastgru as fg
from fastgru.layers import GRU, Dense, Dropout, Embedding, Input, Masking

FILES = Path(__file__).parent / "fixtures" / "files"
ROOT = Path(__file__).resolve().parents[1]


def _data(shape=(40, 10, 50), seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _model(**gru):
    fg.set_random_seed(7)
    model = fg.Sequential([
        Input(shape=(10, 50)),
        GRU(16, return_sequences=True, **gru),
        Dropout(0.25),
        GRU(8),
        Dense(3, activation="softmax"),
    ])
    return model


def _roundtrip(obj):
    return pickle.loads(pickle.dumps(obj))


def test_model_roundtrip_same_predictions_weights_config():
    model = _model()
    x = _data()
    clone = _roundtrip(model)
    assert clone is not model and clone.name == model.name
    assert clone.get_config() == model.get_config()
    assert clone.input_shape == model.input_shape and clone.output_shape == model.output_shape
    for a, b in zip(model.get_weights(), clone.get_weights()):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert np.array_equal(clone.predict(x), model.predict(x))
    assert [l.name for l in clone.layers] == [l.name for l in model.layers]


def test_pickle_holds_no_compiled_code():
    data = pickle.dumps(_model())
    assert b"numba" not in data and b"Dispatcher" not in data
    assert b"fastgru._pickle" in data and b"rebuild_model" in data


def test_compiled_model_keeps_compile_configuration_and_optimizer_state():
    model = _model()
    model.compile(optimizer=fg.optimizers.Adam(learning_rate=3e-3, clipnorm=1.0),
                  loss="sparse_categorical_crossentropy",
                  metrics=["accuracy", fg.metrics.SparseCategoricalAccuracy(name="sca")])
    x, y = _data(), np.random.default_rng(1).integers(0, 3, 40)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    clone = _roundtrip(model)
    assert clone.compiled
    assert type(clone.optimizer) is type(model.optimizer)
    assert clone.optimizer.get_config() == model.optimizer.get_config()
    assert clone.optimizer.iterations == model.optimizer.iterations == 3  # (the state travels, as a Functional's)
    assert clone.loss == model.loss == "sparse_categorical_crossentropy"  # (as given to compile, as Keras's)
    assert clone._compiled.loss.get_config() == model._compiled.loss.get_config()
    assert clone.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)
    for m in (model, clone):  # training goes on where it was: the same weights, bit for bit
        m.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    for a, b in zip(clone.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_unpickling_leaves_the_global_generator_alone():
    data = pickle.dumps(_model())
    fg.set_random_seed(3)
    expected = np.random.default_rng(3).integers(0, 2**63 - 1, 4)  # what make_rng would draw next
    fg.set_random_seed(3)
    pickle.loads(data)
    assert np.array_equal(fg.random.global_rng().integers(0, 2**63 - 1, 4), expected)


def test_layer_generators_continue():
    """Dropout draws after unpickling continue the original layer's stream (a true copy)."""
    layer = GRU(6, dropout=0.5, recurrent_dropout=0.3)
    x = _data((5, 4, 3))
    layer(x)
    clone = _roundtrip(layer)
    a, _ = layer.forward(x, training=True)
    b, _ = clone.forward(x, training=True)
    assert np.array_equal(a, b)


@pytest.mark.parametrize("make", [
    lambda: GRU(5, reset_after=False, go_backwards=True, return_sequences=True),
    lambda: Dense(4, activation="tanh"),
    lambda: Masking(0.0),
])
def test_single_layers(make):
    layer = make()
    x = _data((6, 7, 3))
    y = layer(x)
    clone = _roundtrip(layer)
    assert type(clone) is type(layer) and clone.get_config() == layer.get_config()
    assert np.array_equal(clone(x), y)


def test_unbuilt_layer_and_model():
    layer = _roundtrip(GRU(4))
    assert not layer.built and layer.units == 4
    model = _roundtrip(fg.Sequential([GRU(4), Dense(1)]))
    assert not model.built
    x = _data((3, 5, 2))
    assert model.predict(x).shape == (3, 1)


def test_model_built_by_predict_and_embedding_model():
    fg.set_random_seed(11)
    model = fg.Sequential([Embedding(30, 8, mask_zero=True), GRU(6, return_sequences=True), Dense(2)])
    tokens = np.random.default_rng(2).integers(0, 30, (9, 12))
    tokens[:, 8:] = 0
    y = model.predict(tokens)
    clone = _roundtrip(model)
    assert clone.input_shape == model.input_shape
    assert np.array_equal(clone.predict(tokens), y)


def test_stateful_state_does_not_travel():
    fg.set_random_seed(5)
    model = fg.Sequential([Input(batch_shape=(4, 3, 2)), GRU(5, stateful=True)])
    x = _data((4, 3, 2))
    first = model.predict(x)
    clone = _roundtrip(model)
    assert not np.any(clone.layers[0].states)  # (zeros: nothing carried)
    assert np.array_equal(clone.predict(x), first)  # starts from zeros, as after reset_states()


def test_loaded_keras_file_roundtrip():
    path = FILES / "k3_gru_options.keras"
    if not path.exists():
        pytest.skip("fixture missing")
    model = fg.load_model(path)
    x = _data((5,) + tuple(model.input_shape[1:]))
    assert np.array_equal(_roundtrip(model).predict(x), model.predict(x))


def test_copy_shares_layers_deepcopy_does_not():
    model = _model()
    shallow, deep = copy.copy(model), copy.deepcopy(model)
    assert shallow is not model and shallow.layers[0] is model.layers[0]  # as Python's default copy
    w = deep.layers[-1].weights[0]
    w += 1.0
    assert not np.array_equal(w, model.layers[-1].weights[0])


def test_fresh_process_predicts_bit_identically(tmp_path):
    """A pickled model unpickled in another Python process predicts the same bits."""
    model = _model(reset_after=False)
    model.compile(optimizer="rmsprop", loss="categorical_crossentropy")
    x = _data((33, 10, 50), seed=4)
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(model))
    np.save(tmp_path / "x.npy", x)
    script = textwrap.dedent(f"""
        import pickle, numpy as np
        import fastgru as fg
        fg.set_num_threads({fg.get_num_threads()})
        model = pickle.loads(open({str(tmp_path / 'model.pkl')!r}, 'rb').read())
        assert model.compiled
        np.save({str(tmp_path / 'y.npy')!r}, model.predict(np.load({str(tmp_path / 'x.npy')!r})))
    """)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    subprocess.run([sys.executable, "-c", script], check=True, env=env, timeout=300)
    assert np.array_equal(np.load(tmp_path / "y.npy"), model.predict(x))
