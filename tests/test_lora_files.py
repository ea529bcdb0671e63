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
