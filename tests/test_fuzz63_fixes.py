"""Fixes from fuzz round 63 (tf_keras files and custom training objects): the outputs of one layer named as
tf_keras names them, with their own losses and metrics; an output's loss logged whenever a tf_keras model has
several outputs; use_ema moving averages restored from a tf_keras .h5; evaluate's list as tf_keras orders it;
Keras 2's CuDNNGRU and CuDNNLSTM loaded (alone and in Bidirectional) with their weights converted as Keras does;
saving refused where a Keras 3 file would mask otherwise than the tf_keras model; clear refusals of Keras-style
Loss and Metric subclasses."""

from __future__ import annotations

import io
import os
import zipfile

import h5py
import numpy as np
import pytest

import fastgru as fg


@pytest.fixture(scope="module")
def tk():
    pytest.importorskip("keras")
    return pytest.importorskip("tf_keras")


def _close(ours, theirs, rtol=1e-5, atol=1e-6):
    assert set(ours) == set(theirs)
    for key in theirs:
        np.testing.assert_allclose(ours[key], theirs[key], rtol=rtol, atol=atol, err_msg=key)


@pytest.mark.keras
def test_two_outputs_of_one_layer_are_named_and_scored_as_tf_keras(tk, rng, tmp_path):
    L = tk.layers
    x = rng.normal(size=(16, 6, 3)).astype("float32")
    inputs = L.Input((6, 3))
    seq, state = L.GRU(4, return_sequences=True, return_state=True, name="gru")(inputs)
    fwd, bwd = L.Bidirectional(L.GRU(3, return_sequences=True), merge_mode=None, name="bidirectional")(inputs)
    km = tk.Model(inputs, [seq, state, fwd, bwd])
    km.compile("adam", ["mse", "mae", "mse", "mae"], metrics=["mae"])
    km.save(tmp_path / "two.h5")
    model = fg.load_model(tmp_path / "two.h5")
    assert model.output_names == km.output_names == ["gru", "gru_1", "bidirectional", "bidirectional_1"]
    ys = [rng.normal(size=s).astype("float32") for s in ((16, 6, 4), (16, 4), (16, 6, 3), (16, 6, 3))]
    _close(model.evaluate(x, ys, verbose=0, return_dict=True), km.evaluate(x, ys, verbose=0, return_dict=True))
    _close({k: v[0] for k, v in model.fit(x, ys, batch_size=8, shuffle=False, verbose=0).history.items()},
           {k: v[0] for k, v in km.fit(x, ys, batch_size=8, shuffle=False, verbose=0).history.items()})


@pytest.mark.keras
def test_an_output_loss_of_a_tf_keras_model_is_logged_when_one_output_has_a_loss(tk, rng, tmp_path):
    L = tk.layers
    x = rng.normal(size=(16, 6, 3)).astype("float32")
    ys = {"a": rng.normal(size=(16, 1)).astype("float32"), "b": rng.normal(size=(16, 2)).astype("float32")}
    inputs = L.Input((6, 3))
    h = L.GRU(4)(inputs)
    km = tk.Model(inputs, [L.Dense(1, name="a")(h), L.Dense(2, name="b")(h)])
    km.compile("adam", loss={"a": "mse"}, metrics={"b": "mae"})
    km.save(tmp_path / "partial.h5")
    model = fg.load_model(tmp_path / "partial.h5")
    np.testing.assert_allclose(model.evaluate(x, ys, verbose=0), km.evaluate(x, ys, verbose=0), rtol=1e-5)
    assert list(model.fit(x, ys, batch_size=8, verbose=0).history) == ["a_loss", "b_mae", "loss"]


@pytest.mark.keras
def test_evaluate_lists_a_tf_keras_models_weighted_metrics_once(tk, rng, tmp_path):
    L = tk.layers
    x = rng.normal(size=(16, 6, 3)).astype("float32")
    y = rng.integers(0, 2, size=(16, 1)).astype("float32")
    km = tk.Sequential([L.GRU(4, input_shape=(6, 3)), L.Dense(1, activation="sigmoid")])
    km.compile("adam", "binary_crossentropy", metrics=["accuracy"], weighted_metrics=["accuracy", "mse"])
    km.save(tmp_path / "weighted.h5")
    model = fg.load_model(tmp_path / "weighted.h5")
    np.testing.assert_allclose(model.evaluate(x, y, verbose=0), km.evaluate(x, y, verbose=0), rtol=1e-5)


@pytest.mark.keras
def test_tf_keras_use_ema_averages_are_restored(tk, rng, tmp_path):
    L = tk.layers
    x = rng.normal(size=(16, 6, 3)).astype("float32")
    y = rng.normal(size=(16, 1)).astype("float32")
    tk.utils.set_random_seed(1)
    km = tk.Sequential([L.GRU(4, input_shape=(6, 3)), L.Dense(1)])
    km.compile(tk.optimizers.Adam(1e-2, use_ema=True, ema_momentum=0.9), "mse")
    km.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    km.save(tmp_path / "ema.h5")
    theirs = tk.models.load_model(tmp_path / "ema.h5")
    ours = fg.load_model(tmp_path / "ema.h5")
    np.testing.assert_allclose(ours.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history["loss"],
                               theirs.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history["loss"],
                               rtol=1e-5)
    for a, b in zip(ours.get_weights(), theirs.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.keras
@pytest.mark.parametrize("kind", ["gru", "lstm"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_keras2_cudnn_layers_load_as_their_gru_and_lstm(tk, rng, tmp_path, kind, bidirectional):
    from tf_keras.src.layers.rnn.cudnn_gru import CuDNNGRU
    from tf_keras.src.layers.rnn.cudnn_lstm import CuDNNLSTM

    L = tk.layers
    cudnn = CuDNNGRU if kind == "gru" else CuDNNLSTM
    native = (lambda u, **k: L.GRU(u, reset_after=True, recurrent_activation="sigmoid", **k)) if kind == "gru" \
        else (lambda u, **k: L.LSTM(u, recurrent_activation="sigmoid", **k))

    def build(make):
        inputs = L.Input((6, 3))
        layer = make(4, return_sequences=bidirectional)
        return tk.Model(inputs, L.Dense(2)(L.Bidirectional(layer)(inputs) if bidirectional else layer(inputs)))

    km = build(cudnn)
    km.set_weights([rng.normal(size=w.shape).astype("float32") * 0.5 for w in km.get_weights()])
    km.save(tmp_path / "cudnn.h5")
    reference = build(native)
    reference.load_weights(tmp_path / "cudnn.h5")  # (tf_keras converts cuDNN's layout into its GRU/LSTM's)
    model = fg.load_model(tmp_path / "cudnn.h5")
    assert type(model.layers[1]).__name__ == ("Bidirectional" if bidirectional else kind.upper())
    x = rng.normal(size=(5, 6, 3)).astype("float32")
    np.testing.assert_allclose(model.predict(x), reference.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    for a, b in zip(model.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.keras
def test_saving_refuses_a_tf_keras_merge_given_a_mask(tk, rng, tmp_path):
    L = tk.layers
    tokens, features = L.Input((6,)), L.Input((6, 3))
    merged = L.concatenate([L.Embedding(25, 3, mask_zero=True)(tokens), L.Dense(3)(features)], name="concatenate")
    km = tk.Model([tokens, features], L.Dense(1)(L.GRU(4)(merged)))
    km.save(tmp_path / "masked.h5")
    model = fg.load_model(tmp_path / "masked.h5")
    x = [rng.integers(0, 25, size=(4, 6)), rng.normal(size=(4, 6, 3)).astype("float32")]
    x[0][:, 4:] = 0
    np.testing.assert_allclose(model.predict(x), km.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    for file in ("again.keras", "again.h5"):
        with pytest.raises(fg.UnsupportedKerasFeature, match="Concatenate 'concatenate'"):
            model.save(tmp_path / file)
        assert not os.path.exists(tmp_path / file)
    unmasked_in = L.Input((6, 3))  # (no mask reaches the merge: saved, and Keras 3 computes the same)
    km2 = tk.Model(unmasked_in, L.Dense(1)(L.GRU(4)(L.add([L.Dense(3)(unmasked_in), unmasked_in]))))
    km2.save(tmp_path / "plain.h5")
    fg.load_model(tmp_path / "plain.h5").save(tmp_path / "plain_again.keras")
    np.testing.assert_allclose(fg.load_model(tmp_path / "plain_again.keras").predict(x[1]),
                               km2.predict(x[1], verbose=0), rtol=1e-5, atol=1e-6)


def test_keras_style_loss_subclass_trains_and_a_stateless_metric_subclass_runs():
    class SquaredError(fg.losses.Loss):  # (traced for its gradient since fuzz round 64: as MeanSquaredError)
        def call(self, y_true, y_pred):
            return fg.ops.mean(fg.ops.square(y_true - y_pred), axis=-1)

    y, p = np.zeros((4, 1), np.float32), np.arange(4, dtype=np.float32)[:, None]
    value, grad = SquaredError().value_and_grad(y, p)
    expected, expected_grad = fg.losses.MeanSquaredError().value_and_grad(y, p)
    assert value == pytest.approx(expected) and np.allclose(grad, expected_grad)

    class AbsErrorSum(fg.metrics.Metric):
        def update_state(self, y_true, y_pred, sample_weight=None):
            pass

        def result(self):
            return 0.0

    metric = AbsErrorSum()  # (no state, no reset_state of its own: Keras's default resets nothing; fuzz round 64)
    metric.reset_state()
    assert metric(np.zeros(2), np.ones(2)) == 0.0


@pytest.mark.keras
def test_freezing_layers_of_a_loaded_model_trains_the_rest_without_compiling_again(keras, rng, tmp_path):
    L = keras.layers
    ids, y = rng.integers(1, 25, size=(32, 8)), rng.integers(0, 3, size=(32,))
    inputs = keras.Input((8,), dtype="int32")
    h = L.Bidirectional(L.GRU(6, return_sequences=True), name="enc")(L.Embedding(25, 8, mask_zero=True,
                                                                                  name="emb")(inputs))
    km = keras.Model(inputs, L.Dense(3, activation="softmax", name="head")(L.GlobalAveragePooling1D()(h)))
    km.compile("adam", "sparse_categorical_crossentropy")
    km.fit(ids, y, epochs=1, batch_size=16, verbose=0, shuffle=False)
    km.save(tmp_path / "freeze.keras")
    histories, weights = [], []
    for lib in (keras, fg):  # (Keras's optimizer takes any part of the variables it was built for; its state goes on)
        model = lib.models.load_model(tmp_path / "freeze.keras")
        model.get_layer("emb").trainable = False
        model.get_layer("enc").trainable = False
        histories.append(model.fit(ids, y, epochs=2, batch_size=16, verbose=0, shuffle=False).history["loss"])
        weights.append(model.get_weights())
        model.save(tmp_path / f"{lib.__name__}.keras")  # (the optimizer's variables for all it was built for)
    shapes = []
    for lib in ("keras", "fastgru"):
        with zipfile.ZipFile(tmp_path / f"{lib}.keras") as archive, \
                h5py.File(io.BytesIO(archive.read("model.weights.h5"))) as f:
            group = f["optimizer/vars"]
            shapes.append([group[str(k)].shape for k in range(len(group))])
    assert shapes[1] == shapes[0] and len(shapes[0]) > 2 * len(weights[0])
    np.testing.assert_allclose(histories[1], histories[0], rtol=1e-5)
    for ours, theirs in zip(weights[1], weights[0], strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_an_optimizer_refuses_variables_it_was_not_built_for(rng):
    optimizer = fg.optimizers.Adam(0.01)
    built = [rng.standard_normal((3, 2)), rng.standard_normal(2)]
    optimizer.build(built)  # (as a loaded optimizer state builds it)
    with pytest.raises(ValueError, match="built for 2 variables; received 1, some of them not among those"):
        optimizer.apply([np.ones(2)], [rng.standard_normal(2)])
    optimizer.apply([np.ones(2)], built[1:])  # (a part of them: trained, the rest waits)
    assert optimizer.iterations == 1
    with pytest.raises(ValueError, match=r"call compile\(\) again"):  # (after a step: Keras's traced step differs)
        optimizer.apply([np.ones((3, 2))], built[:1])


def test_a_metric_refusing_inputs_of_one_shape_says_why_without_a_shape_mismatch(rng):
    model = fg.Sequential([fg.layers.Input((3, 2)), fg.layers.GRU(4, return_sequences=True), fg.layers.Dense(1)])
    model.compile("adam", "mse", metrics=[fg.metrics.R2Score()])
    x, y = rng.standard_normal((8, 3, 2)).astype("float32"), rng.standard_normal((8, 3, 1)).astype("float32")
    with pytest.raises(ValueError, match="metric 'r2_score'") as caught:
        model.evaluate(x, y, verbose=0)
    assert "do not fit" not in str(caught.value)


@pytest.mark.keras
@pytest.mark.parametrize("merge", ["Concatenate", "Add", "Maximum"])
def test_a_merge_on_a_one_element_list_loads_and_saves(keras, rng, tmp_path, merge):
    L = keras.layers
    inputs = keras.Input((10, 4), name="frames")
    km = keras.Model(inputs, L.Dense(2)(getattr(L, merge)()([L.GRU(3)(inputs)])))
    km.save(tmp_path / "single.keras")
    x = rng.normal(size=(3, 10, 4)).astype("float32")
    model = fg.load_model(tmp_path / "single.keras")
    np.testing.assert_allclose(model.predict(x), km.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    model.save(tmp_path / "again.keras")  # (fastgru reads its own file back, and Keras does)
    for back in (fg.load_model(tmp_path / "again.keras"), keras.models.load_model(tmp_path / "again.keras")):
        np.testing.assert_allclose(np.asarray(back.predict(x, verbose=0)), km.predict(x, verbose=0), rtol=1e-5,
                                   atol=1e-6)
    assert model.get_layer("frames") is model.layers[0]  # (a loaded model's InputLayer, by name, as Keras's)


@pytest.mark.keras
def test_get_layer_finds_the_input_layer_of_a_loaded_chain(keras, tmp_path):
    km = keras.Model(inputs := keras.Input((5, 3), name="feats"), keras.layers.GRU(2)(inputs))
    km.save(tmp_path / "chain.keras")
    model = fg.load_model(tmp_path / "chain.keras")
    assert model.get_layer("feats") is model.layers[0]
    assert type(model.get_layer("feats")).__name__ == "InputLayer"


@pytest.mark.keras
def test_a_keras_layer_class_in_custom_objects_is_named_as_not_a_fastgru_layer(keras, tmp_path):
    class Scale(keras.layers.Layer):
        def build(self, shape):
            self.w = self.add_weight(shape=(shape[-1],), initializer="ones")

        def call(self, x):
            return x * self.w

    km = keras.Sequential([keras.Input((5, 3)), keras.layers.GRU(4, return_sequences=True), Scale(name="scale"),
                           keras.layers.GRU(2)])
    km.save(tmp_path / "scale.keras")
    with pytest.raises(fg.UnsupportedKerasFeature, match="custom_objects gives for it is not a fastgru layer"):
        fg.load_model(tmp_path / "scale.keras", custom_objects={"Scale": Scale})
    with pytest.raises(fg.UnsupportedKerasFeature, match="a custom or unknown layer class"):
        fg.load_model(tmp_path / "scale.keras")
