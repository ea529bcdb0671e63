"""``save(filepath, overwrite=True)`` and ``save_weights(filepath, overwrite=True)`` as Keras 3 takes them:
Keras's own ``ModelCheckpoint`` passes ``overwrite=True`` and works inside fastgru's ``fit``."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg


def _model():
    model = fg.Sequential([fg.layers.Input((5, 3)), fg.layers.GRU(4), fg.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    return model


def _data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((8, 5, 3)).astype(np.float32), rng.standard_normal((8, 1)).astype(np.float32)


@pytest.mark.parametrize("name,method", [("m.keras", "save"), ("w.weights.h5", "save_weights")])
def test_overwrite_false_refuses_an_existing_file(tmp_path, name, method):
    model = _model()
    target = tmp_path / name
    getattr(model, method)(target, overwrite=False)  # a new file: written
    before = target.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=False"):
        getattr(model, method)(target, overwrite=False)
    assert target.read_bytes() == before
    getattr(model, method)(target)  # overwrite=True by default, as Keras


@pytest.mark.parametrize("weights_only", [False, True])
def test_keras_model_checkpoint_in_fastgru_fit(tmp_path, keras, weights_only):
    x, y = _data()
    model = _model()
    path = tmp_path / ("w.weights.h5" if weights_only else "m.keras")
    check = keras.callbacks.ModelCheckpoint(str(path), save_weights_only=weights_only)
    model.fit(x, y, epochs=2, batch_size=4, verbose=0, callbacks=[check])
    if weights_only:
        again = _model()
        again.load_weights(path)
    else:
        again = fg.load_model(path)
    np.testing.assert_array_equal(again.predict(x), model.predict(x))
