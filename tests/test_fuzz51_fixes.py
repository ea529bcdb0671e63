"""Fixes from the fifty-first Keras-parity fuzz round (recurrent models as practitioners write them); each test says
what was wrong."""

from __future__ import annotations

import json
import warnings
import zipfile

import numpy as np
import pytest

import fastgru as fg
from fastgru.training import metrics as metric_registry

L = fg.layers


def _file_with_metrics(tmp_path, metrics) -> str:
    """A compiled fastgru model's .keras file whose compile config lists ``metrics`` (as a Keras file stores them)."""
    model = fg.Sequential([fg.Input((5, 3)), L.GRU(4), L.Dense(1)])
    model.compile("adam", "mse", metrics=["mape"])
    x, y = np.ones((8, 5, 3), "f"), np.ones((8, 1), "f")
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    model.save(tmp_path / "m.keras")
    source = zipfile.ZipFile(tmp_path / "m.keras")
    config = json.loads(source.read("config.json"))
    config["compile_config"]["metrics"] = metrics
    with zipfile.ZipFile(tmp_path / "custom.keras", "w") as z:
        for name in source.namelist():
            z.writestr(name, json.dumps(config) if name == "config.json" else source.read(name))
    return str(tmp_path / "custom.keras")


def _function(name: str) -> dict:
    return {"module": "builtins", "class_name": "function", "config": name, "registered_name": "function"}


def test_a_custom_metric_function_is_left_out_and_the_rest_compiled(tmp_path):
    """A notebook's ``compile(metrics=[rmse])`` (a Python function: Keras loads the file only given
    ``custom_objects``) left the model uncompiled, dropping the loss and the optimizer's saved state with it, and the
    warning's reason was garbled ("dictionary update sequence element #0 has length 1"). Now the metric is left out
    with a warning naming it, and training resumes from the saved optimizer state."""
    path = _file_with_metrics(tmp_path, [_function("rmse"), _function("mean_absolute_error"), "mape"])
    with pytest.warns(UserWarning, match="metrics fastgru cannot compute, left out: metric 'rmse' is a custom Python "
                                         "function, which fastgru cannot run from a file \\(give it in load_model's "
                                         "custom_objects, as Keras asks\\); the loss, the optimizer and its state are kept"):
        model = fg.load_model(path)
    assert model.optimizer.iterations == 2  # (the saved state: two steps of the first fit)
    history = model.fit(np.ones((8, 5, 3), "f"), np.ones((8, 1), "f"), epochs=1, batch_size=4, verbose=0).history
    assert sorted(history) == ["loss", "mape", "mean_absolute_error"]  # (Keras's own function, read by its name)


@pytest.mark.parametrize("metrics, kept", [
    (["rmse"], []),
    ([["mae", "r2_custom"]], [["mae"]]),
    ({"dense": [_function("f1_m"), "mae"]}, {"dense": ["mae"]}),
    ([{"module": "__main__", "class_name": "MyMetric", "config": {"name": "m"}}, None], [None]),
])
def test_computable_metrics_keep_their_structure(metrics, kept):
    from fastgru.io.compile_restore import _computable

    dropped: list[str] = []
    assert _computable(metrics, dropped) == kept
    assert len(dropped) == 1 and "; supported" not in dropped[0]  # (without the list of every name)


def test_serialised_metric_functions_by_name():
    function = metric_registry.get(_function("mean_absolute_error"))
    assert function.name == "mean_absolute_error"
    with pytest.raises(ValueError, match="metric 'rmse' is a custom Python function"):
        metric_registry.get(_function("rmse"))
    with pytest.raises(ValueError, match="its config should be an object"):
        metric_registry.get({"class_name": "MeanSquaredError", "config": "x"})


@pytest.mark.keras
def test_a_keras_model_with_a_custom_metric_trains_on_as_keras(keras, tmp_path):
    L_ = keras.layers

    def rmse(y_true, y_pred):
        return keras.ops.sqrt(keras.ops.mean(keras.ops.square(y_pred - y_true)))

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 5, 3)).astype("float32"), rng.normal(size=(16, 1)).astype("float32")
    keras.utils.set_random_seed(0)
    km = keras.Sequential([L_.Input((5, 3)), L_.GRU(4), L_.Dense(1)])
    km.compile("adam", "mse", metrics=[rmse, keras.metrics.mean_absolute_error, "mape"])
    km.fit(x, y, epochs=1, batch_size=8, verbose=0)
    km.save(tmp_path / "m.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = fg.load_model(tmp_path / "m.keras")
    theirs = keras.models.load_model(tmp_path / "m.keras", custom_objects={"rmse": rmse})
    expected = theirs.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history
    got = ours.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history
    assert set(got) == set(expected) - {"rmse"}
    for key in got:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-5, err_msg=key)
