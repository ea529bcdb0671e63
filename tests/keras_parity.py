"""One check many Keras-parity tests make: a Keras model's files load in fastgru to Keras's predictions (as
does ``fg.from_keras``), both train to the same history, and the file fastgru writes back opens in Keras."""

from __future__ import annotations

import numpy as np

import fastgru as fg


def assert_keras_parity(keras, km, x, y, tmp_path, loss: str, epochs: int = 2, batch_size: int = 4,
                        suffixes=(".keras", ".h5")):
    """``km``: a Keras model with its weights set. Returns the fastgru model trained alongside it. (Keras predicts
    by calling the model in inference mode: the forward ``predict`` runs, without a graph traced for one batch;
    Keras trains as ``fit`` trains, in its compiled graph.)"""
    expected = _inference(km, x)

    def same(ours, theirs):
        for a, b in zip(ours if isinstance(ours, list) else [ours], theirs if isinstance(theirs, list) else [theirs]):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)

    for suffix in suffixes:
        km.save(tmp_path / f"parity{suffix}")
        same(fg.load_model(tmp_path / f"parity{suffix}").predict(x), expected)
    ours = fg.from_keras(km)
    same(ours.predict(x), expected)
    km.compile(keras.optimizers.Adam(0.01), loss)
    ours.compile(fg.optimizers.Adam(0.01), loss)
    theirs = km.fit(x, y, epochs=epochs, batch_size=batch_size, shuffle=False, verbose=0).history["loss"]
    mine = ours.fit(x, y, epochs=epochs, batch_size=batch_size, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(mine, theirs, rtol=1e-5)
    ours.save(tmp_path / "parity_back.keras")
    same(_inference(keras.models.load_model(tmp_path / "parity_back.keras"), x), ours.predict(x))
    return ours


def _inference(km, x):
    """What ``km.predict(x)`` returns (an array, or a list of them), from one eager call in inference mode."""
    out = km(x, training=False)
    return [np.asarray(o) for o in out] if isinstance(out, (list, tuple)) else np.asarray(out)


def assert_fixture_numbers(model, data, tmp_path):
    """A model loaded from a committed Keras file (tests/fixtures): Keras's predictions ``pred``, its ``loss``
    history over three epochs of fit (batch 4, no shuffling) and its predictions after them (``pred_after``);
    written back, it reads again to the same numbers. Returns the model read again."""
    np.testing.assert_allclose(model.predict(data["x"]), data["pred"], rtol=1e-5, atol=1e-6)
    history = model.fit(data["x"], data["y"], epochs=3, batch_size=4, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(history, data["loss"], rtol=1e-5)
    np.testing.assert_allclose(model.predict(data["x"]), data["pred_after"], rtol=1e-4, atol=1e-5)
    model.save(tmp_path / "fixture_back.keras")
    again = fg.load_model(tmp_path / "fixture_back.keras")
    np.testing.assert_array_equal(again.predict(data["x"]), model.predict(data["x"]))
    return again


def assert_same_fit(ours, theirs, x, y, epochs: int = 2, batch_size: int = 4):
    """Both models trained alongside (no shuffling): fastgru's loss history matches Keras's."""
    expected = theirs.fit(x, y, epochs=epochs, batch_size=batch_size, shuffle=False, verbose=0).history["loss"]
    mine = ours.fit(x, y, epochs=epochs, batch_size=batch_size, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(mine, expected, rtol=1e-5)
