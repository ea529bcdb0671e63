"""``compile(weighted_metrics=...)``: metrics that weigh each sample by ``sample_weight`` (or by the weight
``class_weight`` gives it), named and logged as Keras 3 names them, read from and written to model files."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import fastgru as fg
from fastgru.layers import GRU, Dense, Input


def _model(seed=0):
    fg.set_random_seed(seed)
    return fg.Sequential([Input((5, 3)), GRU(4), Dense(2)])


def _data(rng, n=10):
    x = rng.normal(size=(n, 5, 3)).astype(np.float32)
    y = rng.normal(size=(n, 2)).astype(np.float32)
    sw = rng.uniform(0.1, 2.0, size=n).astype(np.float32)
    return x, y, sw


def test_names_follow_keras():
    from fastgru.training.compile_metrics import name_metrics
    from fastgru.training.metrics import get

    plain = [get("mae"), get("mse"), get("mae")]
    weighted = [get("mae"), get("mae"), get("accuracy")]
    name_metrics([(m, None) for m in plain], [(m, None) for m in weighted])
    assert [m.name for m in plain] == ["mae", "mse", "mae_1"]
    assert [m.name for m in weighted] == ["weighted_mae", "weighted_mae_1", "accuracy"]
    a, b = get("mae"), get("mae")
    name_metrics([(a, "out")], [(b, "out")])
    assert (a.name, b.name) == ("out_mae", "out_weighted_mae")


def test_weighted_metrics_weigh_the_samples(rng):
    x, y, sw = _data(rng)
    model = _model()
    model.compile("sgd", "mse", metrics=["mae"], weighted_metrics=["mae", "mse"])
    logs = model.evaluate(x, y, sample_weight=sw, batch_size=4, return_dict=True, verbose=0)
    assert sorted(logs) == ["loss", "mae", "mse", "weighted_mae"]
    err = model.predict(x) - y
    per_sample_mae, per_sample_mse = np.abs(err).mean(axis=1), (err ** 2).mean(axis=1)
    np.testing.assert_allclose(logs["mae"], per_sample_mae.mean(), rtol=1e-5)
    np.testing.assert_allclose(logs["weighted_mae"], np.sum(sw * per_sample_mae) / sw.sum(), rtol=1e-5)
    np.testing.assert_allclose(logs["mse"], np.sum(sw * per_sample_mse) / sw.sum(), rtol=1e-5)
    assert logs["weighted_mae"] != pytest.approx(logs["mae"], rel=1e-3)
    # evaluate's list as Keras's: the logs looked up by the metrics' own names (loss, mae, mae, mse: the weighted
    # "mae" finds the plain one's log), then the logs not found (weighted_mae)
    values = model.evaluate(x, y, sample_weight=sw, batch_size=4, verbose=0)
    np.testing.assert_allclose(values, [logs[k] for k in ("loss", "mae", "mae", "mse", "weighted_mae")], rtol=1e-6)
    # without sample weights, the weighted metrics are the plain ones
    plain = model.evaluate(x, y, batch_size=4, return_dict=True, verbose=0)
    np.testing.assert_allclose(plain["weighted_mae"], plain["mae"], rtol=1e-6)


def test_class_weight_reaches_the_weighted_metrics(rng):
    x = rng.normal(size=(12, 5, 3)).astype(np.float32)
    y = rng.integers(0, 2, size=(12, 2)).astype(np.float32)
    y[:, 1] = 1 - y[:, 0]
    model = _model()
    model.compile("sgd", "categorical_crossentropy", weighted_metrics=["categorical_accuracy"])
    hit = (model.predict(x).argmax(1) == y.argmax(1)).astype(np.float64)  # (the logs come before the update)
    logs = model.train_on_batch(x, y, class_weight={0: 0.25, 1: 3.0}, return_dict=True)
    w = np.where(y.argmax(1) == 0, 0.25, 3.0)
    np.testing.assert_allclose(logs["categorical_accuracy"], np.sum(w * hit) / w.sum(), rtol=1e-6)
    assert np.sum(w * hit) / w.sum() != pytest.approx(hit.mean())


def test_multi_output_names_and_values(rng):
    x, y, sw = _data(rng)
    fg.set_random_seed(1)
    inputs = fg.Input((5, 3), name="seq")
    h = GRU(4)(inputs)
    model = fg.Model(inputs, [Dense(2, name="a")(h), Dense(1, name="b")(h)])
    model.compile("sgd", ["mse", "mae"], metrics={"a": ["mae"]}, weighted_metrics={"a": ["mae"], "b": ["mse"]})
    yb = y[:, :1]
    logs = model.evaluate(x, [y, yb], sample_weight=sw, return_dict=True, verbose=0)
    assert sorted(logs) == ["a_loss", "a_mae", "a_weighted_mae", "b_loss", "b_mse", "loss"]
    pa, pb = model.predict(x)
    np.testing.assert_allclose(logs["a_weighted_mae"], np.sum(sw * np.abs(pa - y).mean(1)) / sw.sum(), rtol=1e-5)
    np.testing.assert_allclose(logs["b_mse"], np.sum(sw * ((pb - yb) ** 2).mean(1)) / sw.sum(), rtol=1e-5)


def test_saved_and_pickled_models_keep_them(rng, tmp_path):
    x, y, sw = _data(rng)
    model = _model()
    model.compile("adam", "mse", metrics=["mae"], weighted_metrics=["mae"])
    expected = model.evaluate(x, y, sample_weight=sw, return_dict=True, verbose=0)
    model.save(tmp_path / "m.keras")
    again = fg.load_model(tmp_path / "m.keras")
    assert again.evaluate(x, y, sample_weight=sw, return_dict=True, verbose=0) == expected
    again = pickle.loads(pickle.dumps(model))
    assert again.evaluate(x, y, sample_weight=sw, return_dict=True, verbose=0) == expected


@pytest.mark.keras
def test_fit_and_evaluate_against_keras(keras, rng, tmp_path):
    """A GRU compiled with metrics and weighted_metrics, fit with sample weights and a weighted validation
    triple, then evaluated: Keras's history and logs, from the live model and from its file."""
    x, y, sw = _data(rng, 11)
    xv, yv, swv = _data(rng, 6)
    L = keras.layers
    km = keras.Sequential([L.Input((5, 3)), L.GRU(4), L.Dense(2)])
    km.compile(keras.optimizers.Adam(0.01), "mse", metrics=["mae"],
               weighted_metrics=["mae", keras.metrics.RootMeanSquaredError(name="rmse")])
    km.save(tmp_path / "m.keras")
    from_file = fg.load_model(tmp_path / "m.keras")
    converted = fg.from_keras(km)
    converted.compile(fg.optimizers.Adam(0.01), "mse", metrics=["mae"],
                      weighted_metrics=["mae", fg.metrics.RootMeanSquaredError(name="rmse")])
    theirs = km.fit(x, y, sample_weight=sw, validation_data=(xv, yv, swv), epochs=2, batch_size=4, shuffle=False,
                    verbose=0).history
    for ours in (from_file, converted):
        mine = ours.fit(x, y, sample_weight=sw, validation_data=(xv, yv, swv), epochs=2, batch_size=4,
                        shuffle=False, verbose=0).history
        assert sorted(mine) == sorted(theirs)
        for key in theirs:
            np.testing.assert_allclose(mine[key], theirs[key], rtol=1e-4, err_msg=key)
    expected = km.evaluate(xv, yv, sample_weight=swv, batch_size=4, verbose=0)
    np.testing.assert_allclose(converted.evaluate(xv, yv, sample_weight=swv, batch_size=4, verbose=0), expected,
                               rtol=1e-4)
    # written back: Keras reads the weighted metrics from fastgru's file
    converted.save(tmp_path / "back.keras")
    back = keras.models.load_model(tmp_path / "back.keras")
    logs = back.evaluate(xv, yv, sample_weight=swv, batch_size=4, verbose=0, return_dict=True)
    assert sorted(logs) == sorted(converted.evaluate(xv, yv, sample_weight=swv, batch_size=4, verbose=0,
                                                     return_dict=True))


@pytest.mark.keras
def test_tf_keras_file_with_weighted_metrics(rng, tmp_path):
    tk = pytest.importorskip("tf_keras")
    x, y, sw = _data(rng, 9)
    km = tk.Sequential([tk.layers.InputLayer((5, 3)), tk.layers.GRU(4), tk.layers.Dense(2)])
    km.compile(tk.optimizers.Adam(0.01), "mse", metrics=["mae"], weighted_metrics=["mae"])
    km.save(tmp_path / "m.h5")
    ours = fg.load_model(tmp_path / "m.h5")
    theirs = km.fit(x, y, sample_weight=sw, epochs=2, batch_size=4, shuffle=False, verbose=0).history
    mine = ours.fit(x, y, sample_weight=sw, epochs=2, batch_size=4, shuffle=False, verbose=0).history
    assert sorted(mine) == sorted(theirs) == ["loss", "mae", "weighted_mae"]
    for key in theirs:
        np.testing.assert_allclose(mine[key], theirs[key], rtol=1e-4, err_msg=key)


@pytest.mark.keras_graph  # eager Keras weighs two outputs' losses otherwise
@pytest.mark.keras
def test_two_outputs_against_keras(keras, rng, tmp_path):
    """A two-output graph with metrics and weighted metrics per output (one name in both): Keras's logs, its
    evaluate list (looked up by the metrics' own names) and its history, from the file."""
    x, y, sw = _data(rng, 10)
    L = keras.layers
    inputs = L.Input((5, 3), name="seq")
    h = L.GRU(4)(inputs)
    km = keras.Model(inputs, [L.Dense(2, name="a")(h), L.Dense(1, name="b")(h)])
    km.compile(keras.optimizers.SGD(0.05), ["mse", "mae"], loss_weights=[1.0, 0.5], metrics={"a": ["mae"]},
               weighted_metrics={"a": ["mae", "mse"], "b": ["mse"]})
    km.save(tmp_path / "two.keras")
    ours = fg.load_model(tmp_path / "two.keras")
    targets = [y, y[:, :1]]
    expected = km.evaluate(x, targets, sample_weight=sw, batch_size=4, verbose=0)
    np.testing.assert_allclose(ours.evaluate(x, targets, sample_weight=sw, batch_size=4, verbose=0), expected,
                               rtol=1e-5)
    theirs = km.fit(x, targets, sample_weight=sw, epochs=2, batch_size=4, shuffle=False, verbose=0).history
    mine = ours.fit(x, targets, sample_weight=sw, epochs=2, batch_size=4, shuffle=False, verbose=0).history
    assert sorted(mine) == sorted(theirs)
    for key in theirs:
        np.testing.assert_allclose(mine[key], theirs[key], rtol=1e-4, err_msg=key)
