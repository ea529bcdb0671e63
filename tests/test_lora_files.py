"""Dense and Embedding layers fine-tuned with LoRA (``lora_rank``, ``lora_alpha``): Keras computes with
``kernel + (lora_alpha / lora_rank) * lora_a @ lora_b``; its .keras files hold that sum, its legacy .h5 files the
frozen kernel and the two factors (trainable weights first), a live model both. fastgru predicts as Keras from all
three."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg


@pytest.mark.parametrize("kind", ["dense", "embedding"])
def test_lora_layers_predict_as_keras_from_every_source(keras, tmp_path, kind):
    rng = np.random.default_rng(50)
    K = keras.layers
    if kind == "dense":
        km = keras.Sequential([keras.Input((5, 3)), K.GRU(4), K.Dense(4, lora_rank=2, lora_alpha=3.0), K.Dense(2)])
        x = rng.normal(size=(3, 5, 3)).astype("float32")
    else:
        km = keras.Sequential([keras.Input((5,), dtype="int32"), K.Embedding(10, 4, lora_rank=2), K.GRU(2)])
        x = rng.integers(0, 10, size=(3, 5))
    for variable in km.weights:  # (the factors as fine-tuning leaves them: B is zero at the start)
        if "lora" in variable.path:
            variable.assign(rng.normal(size=variable.shape).astype("float32"))
    expected = km.predict(x, verbose=0)
    np.testing.assert_allclose(fg.from_keras(km).predict(x), expected, rtol=1e-5, atol=1e-6)
    for suffix in (".keras", ".h5"):
        km.save(tmp_path / f"lora{suffix}")
        np.testing.assert_allclose(fg.load_model(tmp_path / f"lora{suffix}").predict(x), expected, rtol=1e-5,
                                   atol=1e-6)


@pytest.mark.keras
def test_lora_layers_train_as_keras_s_loaded_model(keras, tmp_path):
    """A .keras file's LoRA Dense and Embedding trained their merged kernel in fastgru; Keras's loaded model
    restarts both factors at zero, where their gradients stay zero, so only the bias trains. Now the kernel is
    frozen as in Keras, and lora_rank is written back, so Keras's model of a fastgru file is a LoRA layer too."""
    import warnings

    L = keras.layers
    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    inputs = L.Input((6,), dtype="int32")
    hidden = L.Dense(3, name="lo")(L.GRU(5)(L.Embedding(20, 4, name="emb")(inputs)))
    km = keras.Model(inputs, L.Dense(1)(hidden))
    km.get_layer("lo").enable_lora(2)
    km.get_layer("emb").enable_lora(2, lora_alpha=4.0)
    km.compile(keras.optimizers.AdamW(0.01), "mse")
    x, y = rng.integers(0, 20, size=(16, 6)), rng.normal(size=(16, 1)).astype("float32")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        km.fit(x, y, epochs=1, verbose=0)  # (the factors move away from zero)
    km.save(tmp_path / "m.keras")
    theirs = keras.models.load_model(tmp_path / "m.keras", compile=False)
    mine = fg.load_model(tmp_path / "m.keras", compile=False)
    theirs.compile(keras.optimizers.AdamW(0.01), "mse")
    mine.compile(fg.optimizers.AdamW(0.01), "mse")
    expected = theirs.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0).history["loss"]
    got = mine.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    np.testing.assert_array_equal(mine.get_layer("lo").get_weights()[0], theirs.get_layer("lo").kernel.numpy())
    assert len(mine.get_layer("lo").trainable_weights) == 1 and not mine.get_layer("emb").trainable_weights
    mine.save(tmp_path / "back.keras")
    back = keras.models.load_model(tmp_path / "back.keras")
    assert back.get_layer("lo").lora_enabled and back.get_layer("emb").lora_enabled
    np.testing.assert_allclose(back.predict(x, verbose=0), mine.predict(x), rtol=1e-5, atol=1e-6)


@pytest.mark.keras
def test_lora_einsum_dense_trains_as_keras_s_loaded_model(keras, tmp_path):
    """EinsumDense's LoRA was refused; its .keras file holds the merged kernel, as Dense's: frozen in training."""
    L = keras.layers
    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    inputs = L.Input((6, 4))
    hidden = L.EinsumDense("abc,cd->abd", (None, 5), bias_axes="d", name="ed")(inputs)
    km = keras.Model(inputs, L.Dense(1)(L.GRU(3)(hidden)))
    km.get_layer("ed").enable_lora(2)
    km.compile(keras.optimizers.Adam(0.01), "mse")
    x, y = rng.normal(size=(16, 6, 4)).astype("float32"), rng.normal(size=(16, 1)).astype("float32")
    km.fit(x, y, epochs=1, verbose=0)
    km.save(tmp_path / "m.keras")
    theirs = keras.models.load_model(tmp_path / "m.keras", compile=False)
    mine = fg.load_model(tmp_path / "m.keras", compile=False)
    np.testing.assert_allclose(mine.predict(x), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    theirs.compile(keras.optimizers.Adam(0.01), "mse")
    mine.compile(fg.optimizers.Adam(0.01), "mse")
    expected = theirs.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(mine.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0).history["loss"],
                               expected, rtol=1e-5)
    mine.save(tmp_path / "back.keras")
    assert keras.models.load_model(tmp_path / "back.keras").get_layer("ed").lora_enabled
