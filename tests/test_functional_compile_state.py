"""A compiled Functional model's training configuration survives ``.keras`` files both ways: fastgru's
``model.save`` writes Keras 3's ``compile_config`` (losses, loss_weights and metrics in the form given:
one, a list in output order, a dict keyed by output name), Keras and fastgru load it compiled, and a Keras
file compiled with loss_weights, without metrics or with loss/metric objects loads compiled in fastgru
with the same numbers as Keras (evaluate, one epoch of fit)."""

from __future__ import annotations

import json
import warnings
import zipfile

import numpy as np
import pytest

import fastgru as fg
from fastgru.io import restore_compile

TOL = 1e-5


def _data(rng, n=16):
    x = rng.standard_normal((n, 6, 3)).astype(np.float32)
    y = {"cls": rng.integers(0, 2, (n, 1)).astype(np.float32), "reg": 3 * rng.standard_normal((n, 2)).astype(np.float32)}
    return x, y


def _fg_graph():
    L = fg.layers
    x_in = fg.Input(shape=(6, 3), name="x")
    h = L.GRU(5, return_sequences=True)(x_in)
    cls = L.Dense(1, activation="sigmoid", name="cls")(L.GRU(3)(h))
    reg = L.Dense(2, name="reg")(L.GlobalAveragePooling1D()(h))
    return fg.Model(x_in, [cls, reg])


def _keras_graph(keras):
    L = keras.layers
    x_in = keras.Input((6, 3), name="x")
    h = L.GRU(5, return_sequences=True)(x_in)
    cls = L.Dense(1, activation="sigmoid", name="cls")(L.GRU(3)(h))
    reg = L.Dense(2, name="reg")(L.GlobalAveragePooling1D()(h))
    return keras.Model(x_in, [cls, reg])


def _compile_config(path) -> dict:
    with zipfile.ZipFile(path) as z:
        return json.loads(z.read("config.json")).get("compile_config")


def _close(ours: dict, theirs: dict, tol=TOL) -> None:
    assert sorted(ours) == sorted(theirs)
    for key, value in theirs.items():
        assert ours[key] == pytest.approx(float(value), rel=tol, abs=tol), key


def _fg_variants():
    return {
        "dicts": dict(optimizer=fg.optimizers.Adam(0.01), loss={"cls": "binary_crossentropy", "reg": "mse"},
                      loss_weights={"cls": 1.0, "reg": 0.1}, metrics={"cls": ["accuracy"], "reg": ["mae"]}),
        "lists_and_objects": dict(optimizer=fg.optimizers.SGD(0.05, momentum=0.5),
                                  loss=["binary_crossentropy", fg.losses.Huber(delta=2.0)], loss_weights=[0.5, 2.0],
                                  metrics=[["accuracy"], ["mae", fg.metrics.MeanSquaredError()]]),
        "one_loss_no_metrics": dict(optimizer=fg.optimizers.RMSprop(0.002), loss="mse"),
    }


@pytest.mark.parametrize("variant", ["dicts", "lists_and_objects", "one_loss_no_metrics"])
def test_fastgru_functional_save_loads_compiled_in_keras_and_fastgru(keras, rng, tmp_path, variant):
    args = _fg_variants()[variant]
    x, y = _data(rng)
    model = _fg_graph()
    model.compile(**args)
    model.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)  # metric objects used before saving
    model.save(tmp_path / "m.keras")
    written = _compile_config(tmp_path / "m.keras")
    assert written is not None
    assert type(written["loss"]) is type(args["loss"])  # the form given: dict, list or one name
    assert written["loss_weights"] == args.get("loss_weights")
    assert (written["metrics"] is None) == ("metrics" not in args)
    ours = model.evaluate(x, y, verbose=0, return_dict=True)

    theirs = keras.models.load_model(tmp_path / "m.keras")
    assert theirs.compiled
    opt = theirs.optimizer
    assert type(opt).__name__ == type(model.optimizer).__name__
    assert float(opt.learning_rate) == pytest.approx(model.optimizer.learning_rate)
    assert theirs._compile_config.config["loss_weights"] == args.get("loss_weights")
    _close(ours, theirs.evaluate(x, y, verbose=0, return_dict=True))

    again = fg.load_model(tmp_path / "m.keras")
    assert again.compiled and again._compiled.loss_weights == model._compiled.loss_weights
    assert type(again.optimizer) is type(model.optimizer)
    assert again.optimizer.get_config() == model.optimizer.get_config()
    _close(again.evaluate(x, y, verbose=0, return_dict=True), ours, 1e-6)
    again.save(tmp_path / "again.keras")
    assert _compile_config(tmp_path / "again.keras") == written


def test_fastgru_metric_object_keeps_its_name(rng):
    x, y = _data(rng)
    mse = fg.metrics.MeanSquaredError()
    model = _fg_graph()
    for _ in range(2):
        model.compile("sgd", loss="mse", metrics={"reg": [mse]})
        assert list(model.evaluate(x, y, verbose=0, return_dict=True)) == [  # (sorted, as Keras's dict)
            "cls_loss", "loss", "reg_loss", "reg_mean_squared_error"]
    assert mse.name == "mean_squared_error"


def _keras_variants(keras):
    return {
        "loss_weights_dict": dict(optimizer=keras.optimizers.Adam(0.01),
                                  loss={"cls": "binary_crossentropy", "reg": "mse"},
                                  loss_weights={"cls": 1.0, "reg": 0.1}, metrics={"cls": ["accuracy"], "reg": ["mae"]}),
        "no_metrics": dict(optimizer=keras.optimizers.SGD(0.05), loss={"cls": "binary_crossentropy", "reg": "mse"},
                           loss_weights={"cls": 1.0, "reg": 0.1}),
        "objects_in_lists": dict(optimizer=keras.optimizers.SGD(0.05, momentum=0.5),
                                 loss=[keras.losses.BinaryCrossentropy(), keras.losses.Huber()], loss_weights=[0.5, 2.0],
                                 metrics=[["accuracy"], ["mae", keras.metrics.MeanSquaredError()]]),
        "one_object_for_all": dict(optimizer=keras.optimizers.Adam(0.01), loss=keras.losses.MeanAbsoluteError(),
                                   metrics=[]),
    }


def _fit_both(km, fm, x, y):
    theirs = km.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0).history
    ours = fm.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0).history
    _close({k: v[0] for k, v in ours.items()}, {k: v[0] for k, v in theirs.items()})
    for a, b in zip(fm.predict(x, verbose=0), km.predict(x, verbose=0)):
        np.testing.assert_allclose(a, b, rtol=TOL, atol=TOL)


@pytest.mark.parametrize("variant", ["loss_weights_dict", "no_metrics", "objects_in_lists", "one_object_for_all"])
def test_keras_functional_file_loads_compiled_as_keras(keras, rng, tmp_path, variant):
    keras.utils.set_random_seed(0)
    x, y = _data(rng)
    km = _keras_graph(keras)
    km.compile(**_keras_variants(keras)[variant])
    km.save(tmp_path / "k.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fm = fg.load_model(tmp_path / "k.keras")
    assert fm.compiled
    _close(fm.evaluate(x, y, verbose=0, return_dict=True), km.evaluate(x, y, verbose=0, return_dict=True))
    _fit_both(km, fm, x, y)


@pytest.mark.parametrize("loss", ["bce_logits", "huber"])
def test_keras_loss_object_on_a_graph_is_one_loss(keras, rng, tmp_path, loss):
    keras.utils.set_random_seed(0)
    a, b = keras.Input((6, 3), name="a"), keras.Input((3,), name="b")
    z = keras.layers.Concatenate()([keras.layers.GRU(4)(a), b])
    km = keras.Model([a, b], keras.layers.Dense(1)(z))
    obj = keras.losses.BinaryCrossentropy(from_logits=True) if loss == "bce_logits" else keras.losses.Huber()
    km.compile(keras.optimizers.Adam(0.01), loss=obj, metrics=[keras.metrics.MeanAbsoluteError()])
    km.save(tmp_path / "k.keras")
    assert _compile_config(tmp_path / "k.keras")["loss"]["class_name"] == type(obj).__name__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fm = fg.load_model(tmp_path / "k.keras")
    assert fm.compiled and type(fm._compiled.losses[0]).__name__ == type(obj).__name__
    x = [rng.standard_normal((16, 6, 3)).astype(np.float32), rng.standard_normal((16, 3)).astype(np.float32)]
    y = rng.integers(0, 2, (16, 1)).astype(np.float32)
    _close(fm.evaluate(x, y, verbose=0, return_dict=True), km.evaluate(x, y, verbose=0, return_dict=True))
    _fit_both(km, fm, x, y)


def test_compile_takes_a_serialized_loss_and_empty_metrics(rng):
    x, y = _data(rng)
    model = _fg_graph()
    serialized = {"module": "keras.losses", "class_name": "MeanSquaredError",
                  "config": {"name": "mean_squared_error", "reduction": "sum_over_batch_size"}, "registered_name": None}
    model.compile("sgd", loss=serialized, metrics=[])
    assert [type(l).__name__ for l in model._compiled.losses] == ["MeanSquaredError"] * 2
    assert list(model.evaluate(x, y, verbose=0, return_dict=True)) == ["cls_loss", "loss", "reg_loss"]
    model.compile("sgd", loss="mse", metrics={"reg": [{"class_name": "MeanAbsoluteError", "config": {}}]})
    assert list(model.evaluate(x, y, verbose=0, return_dict=True))[-1] == "reg_mean_absolute_error"


def test_sequential_file_with_loss_weights_compiles_with_them():
    """A Sequential file compiled with loss_weights (a number or one in a list): compiled with that weight, which
    scales the loss (it loaded uncompiled before Sequential.compile took loss_weights)."""
    def seq():
        fg.set_random_seed(0)
        return fg.Sequential([fg.layers.Input((4, 2)), fg.layers.GRU(3)])

    x = np.random.default_rng(0).normal(size=(5, 4, 2)).astype(np.float32)
    y = np.zeros((5, 3), np.float32)
    losses = []
    for weights in ([1.0], 0.5):
        model = seq()
        restore_compile(model, {"optimizer": "sgd", "loss": "mse", "loss_weights": weights, "metrics": None}, "f")
        assert model.compiled
        losses.append(model.evaluate(x, y, verbose=0))
    np.testing.assert_allclose(losses[1], 0.5 * losses[0], rtol=1e-6)


@pytest.mark.parametrize("dict_outputs", [True, False])
@pytest.mark.parametrize("order", [("zeta", "alpha", "mid"), ("mid", "alpha", "zeta")])
def test_evaluate_lists_the_output_losses_in_keras_order(keras, dict_outputs, order):
    """Keras lists the per-output losses in the loss dict's key order for a dict of outputs, else in the
    outputs' order (values checked against return_dict, which both agree on)."""
    L = keras.layers
    rng = np.random.default_rng(5)
    x = rng.standard_normal((12, 6, 3)).astype(np.float32)
    y = {"zeta": rng.integers(0, 2, (12, 1)).astype(np.float32), "alpha": rng.standard_normal((12, 2)).astype(
        np.float32), "mid": rng.standard_normal((12, 3)).astype(np.float32)}
    inp = keras.Input((6, 3))
    h = L.GRU(4)(inp)
    heads = {"zeta": L.Dense(1, activation="sigmoid", name="zeta")(h), "alpha": L.Dense(2, name="alpha")(h),
             "mid": L.Dense(3, name="mid")(h)}
    model = keras.Model(inp, heads if dict_outputs else [heads["zeta"], heads["alpha"], heads["mid"]])
    losses = {"zeta": "binary_crossentropy", "alpha": "mse", "mid": "mae"}
    ours = fg.from_keras(model)
    model.compile(optimizer="sgd", loss={k: losses[k] for k in order})
    ours.compile(optimizer="sgd", loss={k: losses[k] for k in order})
    np.testing.assert_allclose(ours.evaluate(x, y, verbose=0), model.evaluate(x, y, verbose=0), rtol=1e-5)


TF_KERAS_COMPILES = {
    # metrics of both outputs, MeanMetricWrapper named "<output>_<metric>" in a list per output; loss_weights
    "both_outputs": dict(optimizer="adam", loss={"a": "mse", "b": "binary_crossentropy"},
                         loss_weights={"a": 0.5, "b": 2.0}, metrics={"a": ["mae"], "b": ["accuracy"]}),
    # metrics of one output of two, after fit: tf_keras writes [[null], [...]]
    "one_output_after_fit": dict(optimizer="sgd", loss={"a": "mse", "b": "binary_crossentropy"},
                                 metrics={"b": ["accuracy"]}),
}


@pytest.mark.parametrize("case", list(TF_KERAS_COMPILES))
def test_tf_keras_multi_output_h5_restores_compiled_as_tf_keras(tmp_path, case):
    """tf_keras's per-output metrics read back with fastgru's own per-output names (none where tf_keras wrote
    null), loss_weights kept, no "loaded uncompiled" warning; evaluate equals tf_keras's."""
    tk = pytest.importorskip("tf_keras")
    L = tk.layers
    rng = np.random.default_rng(6)
    x = rng.standard_normal((16, 6, 3)).astype(np.float32)
    ya, yb = rng.standard_normal((16, 2)).astype(np.float32), rng.integers(0, 2, (16, 1)).astype(np.float32)
    inp = L.Input((6, 3))
    h = L.GRU(4)(inp)
    model = tk.Model(inp, [L.Dense(2, name="a")(h), L.Dense(1, activation="sigmoid", name="b")(h)])
    model.compile(**TF_KERAS_COMPILES[case])
    if case == "one_output_after_fit":
        model.fit(x, [ya, yb], epochs=1, verbose=0)
    model.save(tmp_path / "m.h5")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = fg.load_model(tmp_path / "m.h5")
    want = model.evaluate(x, [ya, yb], verbose=0, return_dict=True)
    got = ours.evaluate(x, [ya, yb], verbose=0, return_dict=True)
    assert set(got) == set(want)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-5)


def test_multi_output_compile_refuses_an_unknown_metric_at_once():
    inp = fg.Input((6, 3))
    h = fg.layers.GRU(4)(inp)
    model = fg.Model(inp, {"a": fg.layers.Dense(2)(h), "b": fg.layers.Dense(1)(h)})
    with pytest.raises(ValueError, match="metric"):
        model.compile(optimizer="sgd", loss="mse", metrics={"a": ["mean_iou"]})


def test_dict_outputs_list_their_losses_in_the_given_order_for_one_or_a_list_of_losses(keras):
    """For a dict of outputs compiled with one loss or a list, Keras lists the per-output losses in the order
    the outputs dict was given (not the sorted order in which it flattens the outputs)."""
    L = keras.layers
    rng = np.random.default_rng(8)
    x = rng.standard_normal((10, 6, 3)).astype(np.float32)
    y = {"zeta": rng.standard_normal((10, 1)).astype(np.float32), "alpha": rng.standard_normal((10, 2)).astype(
        np.float32)}
    inp = keras.Input((6, 3))
    h = L.GRU(4)(inp)
    model = keras.Model(inp, {"zeta": L.Dense(1, name="zeta")(h), "alpha": L.Dense(2, name="alpha")(h)})
    ours = fg.from_keras(model)
    for loss in ("mse", ["mse", "mae"]):
        model.compile(optimizer="sgd", loss=loss)
        ours.compile(optimizer="sgd", loss=loss)
        np.testing.assert_allclose(ours.evaluate(x, y, verbose=0), model.evaluate(x, y, verbose=0), rtol=1e-5)
