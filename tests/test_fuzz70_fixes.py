"""Fuzz round 70 (an application builder's calls, compared with Keras 3): a model whose inputs were given as a dict
is keyed by that dict's keys, as Keras's is."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg


@pytest.mark.keras
def test_a_model_built_on_a_dict_of_inputs_is_keyed_by_the_dicts_keys(keras, rng, tmp_path):
    """Keys other than the Inputs' names ("series" for Input "seq_in"), in another order than the names sort in:
    predict, evaluate and fit take the keys, as Keras's do; a dict keyed by the Inputs' names is taken too."""
    L = keras.layers
    seq, aux = keras.Input((6, 3), name="seq_in"), keras.Input((2,), name="a_aux")
    out = L.Dense(1)(L.Concatenate()([L.GRU(4)(seq), aux]))
    km = keras.Model({"series": seq, "aux": aux}, out)
    km.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    km.save(tmp_path / "d.keras")
    model = fg.load_model(tmp_path / "d.keras")
    x = {"series": rng.standard_normal((10, 6, 3)).astype(np.float32),
         "aux": rng.standard_normal((10, 2)).astype(np.float32)}
    y = rng.standard_normal((10, 1)).astype(np.float32)
    expected = km.predict(x, verbose=0)
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model(x), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.predict({"seq_in": x["series"], "a_aux": x["aux"], "id": np.arange(10)}),
                               expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.evaluate(x, y, verbose=0), km.evaluate(x, y, verbose=0), rtol=1e-5)
    ours = model.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0).history["loss"]
    theirs = km.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)
    with pytest.raises(ValueError, match=r"expects inputs \['aux', 'series'\] \(the inputs' names: .*the dict "
                                         r"misses \['series'\] \(its other keys: \['seq'\]\)"):
        model.predict({"aux": x["aux"], "seq": x["series"]})


def test_a_model_built_in_code_on_a_dict_of_inputs_takes_its_keys(rng):
    inputs = {"tokens": fg.Input((5,), dtype="int32", name="ids"), "extra": fg.Input((3,), name="more")}
    h = fg.layers.GRU(4)(fg.layers.Embedding(9, 3, mask_zero=True)(inputs["tokens"]))
    model = fg.Model(inputs, fg.layers.Dense(2)(fg.layers.Concatenate()([h, inputs["extra"]])))
    tokens, extra = rng.integers(0, 9, (6, 5)), rng.standard_normal((6, 3)).astype(np.float32)
    by_key = model.predict({"tokens": tokens, "extra": extra})
    np.testing.assert_array_equal(model.predict({"ids": tokens, "more": extra}), by_key)
    np.testing.assert_array_equal(model.predict([extra, tokens]), by_key)  # (a list: the keys' sorted order)
