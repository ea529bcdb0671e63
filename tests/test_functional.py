"""Functional models (fg.Input, layers called on symbolic tensors, fg.Model) and the merge layers,
checked against live Keras (forward outputs, get_weights order, 5 train_on_batch steps, history keys)
and, without Keras, against finite differences and for their errors."""

from __future__ import annotations

import functional_cases as fc
import numpy as np
import pytest

import fastgru as fg

L = fg.layers

LOSSES = {"two_inputs": "binary_crossentropy", "pooled_bigru": "categorical_crossentropy", "residual": "mse",
          "siamese": "binary_crossentropy", "seq2seq_gru": "categorical_crossentropy",
          "seq2seq_lstm": "categorical_crossentropy", "two_outputs": ["binary_crossentropy", "mse"],
          "masked_merges": "mse", "attention_dot": "mse", "nested": "mse", "bidirectional_states": "mse",
          "bidirectional_initial_state": "mse", "explicit_mask": "mse"}


def _pair(keras, name):
    km = fc.make(keras, name)
    ours = fc.make(fg, name)
    assert [l.name for l in ours.layers] == [l.name for l in km.layers]
    assert [w.shape for w in ours.get_weights()] == [tuple(w.shape) for w in km.get_weights()]
    ours.set_weights(km.get_weights())
    return km, ours


def _listed(a):
    return a if isinstance(a, list) else [a]


def _x(xs):
    return xs if len(xs) > 1 else xs[0]


@pytest.mark.parametrize("name", list(fc.BUILDERS))
def test_forward_matches_keras(keras, name):
    km, ours = _pair(keras, name)
    xs, _ = fc.data(name)
    xs = _x(xs)
    expected = _listed(km.predict(xs, verbose=0))
    for got in (ours.predict(xs), ours.predict(xs, batch_size=3), ours(xs)):
        for e, g in zip(expected, _listed(got)):
            np.testing.assert_allclose(g, e, rtol=1e-5, atol=2e-6)


@pytest.mark.parametrize("name,optimizer", [(n, "adam") for n in ("two_inputs", "siamese", "seq2seq_gru",
                                                                     "seq2seq_lstm", "two_outputs", "nested",
                                                                     "bidirectional_states", "masked_merges",
                                                                     "bidirectional_initial_state", "explicit_mask")]
                         + [(n, "rmsprop") for n in ("two_inputs", "siamese", "seq2seq_gru", "seq2seq_lstm")]
                         + [("siamese", "sgd")])
def test_five_training_steps_match_keras(keras, name, optimizer):
    km, ours = _pair(keras, name)
    xs, ys = fc.data(name)
    xs, y = _x(xs), _x(ys)
    options = {"loss": LOSSES[name]}
    if name == "two_outputs":
        options.update(loss_weights=[1.0, 0.5], metrics=[["accuracy"], ["mae"]])
    km.compile(optimizer, **options)
    ours.compile(optimizer, **options)
    for _ in range(5):
        np.testing.assert_allclose(ours.train_on_batch(xs, y), km.train_on_batch(xs, y), rtol=1e-4)
    for w_ours, w_keras in zip(ours.get_weights(), km.get_weights()):
        np.testing.assert_allclose(w_ours, w_keras, rtol=1e-3, atol=1e-5)


@pytest.mark.keras_graph  # eager Keras weighs two outputs' losses otherwise
def test_several_outputs_fit_history_and_evaluate_as_keras(keras):
    km, ours = _pair(keras, "two_outputs")
    xs, ys = fc.data("two_outputs", n=10)
    options = dict(loss={"cls": "binary_crossentropy", "reg": "mse"}, loss_weights={"cls": 1.0, "reg": 0.5},
                   metrics={"cls": ["accuracy"], "reg": ["mae"]})
    km.compile("adam", **options)
    ours.compile("adam", **options)
    hk = km.fit(xs[0], {"cls": ys[0], "reg": ys[1]}, epochs=2, batch_size=4, shuffle=False, verbose=0).history
    ho = ours.fit(xs[0], {"cls": ys[0], "reg": ys[1]}, epochs=2, batch_size=4, shuffle=False, verbose=0).history
    assert sorted(ho) == sorted(hk) == ["cls_accuracy", "cls_loss", "loss", "reg_loss", "reg_mae"]
    for key in hk:
        np.testing.assert_allclose(ho[key], hk[key], rtol=1e-4)
    np.testing.assert_allclose(ours.evaluate(xs[0], ys, verbose=0), km.evaluate(xs[0], ys, verbose=0), rtol=1e-4)
    got, expected = ours.evaluate(xs[0], ys, verbose=0, return_dict=True), km.evaluate(xs[0], ys, verbose=0,
                                                                                      return_dict=True)
    assert set(got) == set(expected)


def test_dict_inputs_and_keras_names(keras):
    km, ours = _pair(keras, "two_inputs")
    xs, _ = fc.data("two_inputs")
    np.testing.assert_allclose(ours.predict({"static": xs[1], "seq": xs[0]}),
                               km.predict({"seq": xs[0], "static": xs[1]}, verbose=0), rtol=1e-5, atol=1e-6)
    assert ours.input_names == ["seq", "static"]
    assert ours.output_names == km.output_names


@pytest.mark.parametrize("cls,kwargs", [("Concatenate", {"axis": 1}), ("Add", {}), ("Dot", {"axes": (1, 2),
                                                                                              "normalize": True})])
def test_merge_configs_match_keras(keras, cls, kwargs):
    ours = getattr(L, cls)(name="m", **kwargs).get_config()
    theirs = getattr(keras.layers, cls)(name="m", **kwargs).get_config()
    for key in theirs:
        if key not in ("dtype",):
            value = list(theirs[key]) if isinstance(theirs[key], tuple) else theirs[key]
            assert (list(ours[key]) if isinstance(ours[key], tuple) else ours[key]) == value, key


# ---- without Keras -----------------------------------------------------------------------------------
def _finite_difference(f, x, eps=1e-6):
    g = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + eps
        up = f()
        x[i] = old - eps
        down = f()
        x[i] = old
        g[i] = (up - down) / (2 * eps)
    return g


MERGES = [
    (lambda: L.Add(), [(2, 3, 4), (2, 3, 4), (2, 3, 4)]),
    (lambda: L.Add(), [(2, 3, 4), (2, 4)]),  # ranks differ: expanded at axis 1 as Keras
    (lambda: L.Subtract(), [(2, 3), (2, 3)]),
    (lambda: L.Average(), [(2, 3), (2, 3), (2, 3)]),
    (lambda: L.Multiply(), [(2, 3, 4), (2, 3, 4), (2, 3, 1)]),
    (lambda: L.Maximum(), [(2, 5), (2, 5), (2, 5)]),
    (lambda: L.Minimum(), [(2, 5), (2, 5)]),
    (lambda: L.Concatenate(axis=1), [(2, 3, 4), (2, 2, 4)]),
    (lambda: L.Concatenate(), [(2, 3), (2, 5)]),
    (lambda: L.Dot(axes=1), [(2, 4), (2, 4)]),
    (lambda: L.Dot(axes=(2, 2)), [(2, 3, 4), (2, 5, 4)]),
    (lambda: L.Dot(axes=(2, 1), normalize=True), [(2, 3, 5), (2, 5, 4)]),
]


@pytest.mark.parametrize("make,shapes", MERGES)
def test_merge_gradients_match_finite_differences(make, shapes):
    rng = np.random.default_rng(3)
    layer = make()
    xs = [rng.normal(size=s) for s in shapes]
    y, cache = layer.forward(xs)
    coef = rng.normal(size=y.shape)
    dxs, grads = layer.backward(coef, cache)
    assert grads == [] and len(dxs) == len(xs)
    np.testing.assert_allclose(layer(xs), y)
    for x, dx in zip(xs, dxs):
        assert dx.shape == x.shape
        np.testing.assert_allclose(dx, _finite_difference(lambda: float((layer.forward(xs)[0] * coef).sum()), x),
                                   rtol=1e-5, atol=1e-7)


def test_merge_masks_follow_keras_rules():
    a, b = np.ones((2, 3, 4)), np.ones((2, 3, 4))
    ma = np.array([[1, 1, 0], [1, 0, 0]], bool)
    mb = np.array([[1, 0, 0], [1, 1, 0]], bool)
    assert L.Add().compute_mask([a, b], [ma, None]) is None
    np.testing.assert_array_equal(L.Add().compute_mask([a, b], [ma, mb]), ma | mb)
    np.testing.assert_array_equal(L.Concatenate().compute_mask([a, b], [ma, None]), np.ones((2, 3), bool))
    np.testing.assert_array_equal(L.Concatenate(axis=1).compute_mask([a, b], [ma, mb]), np.concatenate([ma, mb], 1))
    assert L.Dot(axes=2).compute_mask([a, b], [ma, mb]) is None


def test_sequential_accepts_the_input_tensor_and_the_input_layer():
    x = np.random.default_rng(0).normal(size=(3, 4, 2)).astype("float32")
    one = fg.Sequential([fg.Input((4, 2)), L.GRU(3)])
    two = fg.Sequential([L.Input((4, 2)), L.GRU(3)])
    two.set_weights(one.get_weights())
    np.testing.assert_allclose(one.predict(x), two.predict(x))
    inp = L.Input((4, 2), name="via_layer")  # an InputLayer also starts a Functional graph
    model = fg.Model(inp, L.GRU(3)(inp))
    model.set_weights(one.get_weights())
    np.testing.assert_allclose(model.predict(x), one.predict(x), rtol=1e-6)


def test_functional_inside_sequential_trains():
    rng = np.random.default_rng(1)
    inner_in = fg.Input((5, 2))
    inner = fg.Model(inner_in, L.GRU(4, return_sequences=True)(inner_in))
    model = fg.Sequential([fg.Input((5, 2)), inner, L.GRU(2), L.Dense(1)])
    x, y = rng.normal(size=(6, 5, 2)).astype("float32"), rng.normal(size=(6, 1)).astype("float32")
    model.compile("adam", "mse")
    first = model.train_on_batch(x, y)
    for _ in range(20):
        last = model.train_on_batch(x, y)
    assert last < first
    assert len(model.get_weights()) == 3 + 3 + 2


def test_shared_layer_keeps_one_weight_set():
    a, b = fg.Input((4, 2), name="a"), fg.Input((4, 2), name="b")
    shared = L.GRU(3, name="shared")
    model = fg.Model([a, b], L.Concatenate()([shared(a), shared(b)]))
    assert [layer.name for layer in model.layers].count("shared") == 1
    assert len(model.get_weights()) == 3
    x = np.random.default_rng(0).normal(size=(2, 4, 2)).astype("float32")
    out = model.predict([x, x])
    np.testing.assert_allclose(out[:, :3], out[:, 3:])


def _two_input_model():
    a, b = fg.Input((4, 2), name="a"), fg.Input((3,), name="b")
    return fg.Model([a, b], L.Dense(1, name="out")(L.Concatenate()([L.GRU(3)(a), b])))


def test_bad_inputs_at_predict_are_refused_before_compute():
    model = _two_input_model()
    x, s = np.zeros((2, 4, 2), "float32"), np.zeros((2, 3), "float32")
    with pytest.raises(ValueError, match=r"expects 2 input\(s\) \['a', 'b'\], received a list of 1"):
        model.predict([x])
    with pytest.raises(ValueError, match=r"expects 2 inputs \['a', 'b'\].*one array"):
        model.predict(x)
    with pytest.raises(ValueError, match=r"misses \['b'\] \(its other keys: \['c'\]\)"):
        model.predict({"a": x, "c": s})
    # (keys that name no input are left aside, as Keras's Functional does: an id column beside the features)
    np.testing.assert_array_equal(model.predict({"a": x, "b": s, "id": np.arange(2)}), model.predict([x, s]))
    with pytest.raises(ValueError, match=r"input 'b' expects shape \(None, 3\), received \(2, 4\)"):
        model.predict([x, np.zeros((2, 4))])
    with pytest.raises(ValueError, match="same number of samples"):
        model.predict([x, s[:1]])
    with pytest.raises(TypeError, match="input 'a' must be a numeric array"):
        model.predict([x.astype(str), s])
    model.compile("adam", "mse")
    with pytest.raises(ValueError, match=r"targets for output 'out' 3"):
        model.train_on_batch([x, s], np.zeros((3, 1)))


def test_bad_graphs_are_refused_with_the_layer_named():
    a, b = fg.Input((4, 2), name="ga"), fg.Input((3,), name="gb")
    h = L.GRU(3, name="g1")(a)
    with pytest.raises(ValueError, match=r"Graph disconnected.*'gb'"):
        fg.Model(a, L.Concatenate()([h, b]))
    unused = fg.Model([a, b], h)  # an input no output uses is accepted, as by Keras (still given at each call)
    assert [t.node.layer.name for t in unused._inputs] == ["ga", "gb"]
    with pytest.raises(ValueError, match=r"Dense 'd1' was built for input shape \(None, 3\) and is called on a tensor "
                                         r"of incompatible shape \(None, 4\)"):
        dense = L.Dense(2, name="d1")
        dense(h)
        dense(L.GRU(4)(a))
    with pytest.raises(ValueError, match=r"Concatenate 'c1'.*inputs of one rank"):
        L.Concatenate(axis=1, name="c1")([h, L.GRU(3, return_sequences=True)(a)])
    with pytest.raises(ValueError, match=r"Concatenate 'c2'.*matching shapes except on the concatenation axis"):
        L.Concatenate(name="c2")([L.GRU(3, return_sequences=True)(a), fg.Input((5, 2))])
    with pytest.raises(ValueError, match=r"Add 'add1'.*incompatible shapes"):
        L.Add(name="add1")([h, fg.Input((4,))])
    with pytest.raises(ValueError, match=r"Subtract 'sub1' should be called on exactly 2 inputs"):
        L.Subtract(name="sub1")([h, h, h])
    with pytest.raises(ValueError, match=r"GRU 'dec1' has 1 state\(s\); initial_state holds 2"):
        L.GRU(3, name="dec1")(a, initial_state=[h, h])
    with pytest.raises(ValueError, match=r"initial_state 0 must have shape \(batch, 5\)"):
        L.GRU(5, name="dec2")(a, initial_state=[h])
    with pytest.raises(ValueError, match="not made by fg.Input"):
        fg.Model(h, L.Dense(1)(h))
    with pytest.raises(TypeError, match="expected a symbolic tensor"):
        fg.Model(a, np.zeros(3))


def test_summary_has_the_connected_to_column():
    lines = []
    _two_input_model().summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "Connected to" in text and "a[0][0]" in text and "Total params" in text


def test_fit_with_validation_data_split_and_nan_inputs():
    model = _two_input_model()
    rng = np.random.default_rng(2)
    xs = [rng.normal(size=(20, 4, 2)).astype("float32"), rng.normal(size=(20, 3)).astype("float32")]
    y = rng.normal(size=(20, 1)).astype("float32")
    model.compile("adam", "mse", metrics=["mae"])
    history = model.fit(xs, y, epochs=2, batch_size=8, validation_data=(xs, y), verbose=0).history
    assert sorted(history) == ["loss", "mae", "val_loss", "val_mae"]
    np.testing.assert_allclose(history["val_loss"][-1], model.evaluate(xs, y, verbose=0)[0], rtol=1e-6)
    history = model.fit({"a": xs[0], "b": xs[1]}, y, epochs=1, validation_split=0.25, verbose=0).history
    assert sorted(history) == ["loss", "mae", "val_loss", "val_mae"]
    bad = xs[0].copy()
    bad[3, 1, 0] = np.nan
    before = model.get_weights()
    with pytest.raises(ValueError, match="input 'a'.*NaN or infinite values in sample 3"):
        model.fit([bad, xs[1]], y, verbose=0)
    for w, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(w, b)


def _functional_in_sequential(mod):
    L = mod.layers
    inner_in = mod.Input(shape=(fc.T, fc.D), name="block_in")
    h = L.GRU(4, return_sequences=True, name="block_gru")(inner_in)
    block = mod.Model(inner_in, L.Concatenate(name="block_cat")([inner_in, h]), name="block")
    return mod.Sequential([mod.Input(shape=(fc.T, fc.D)), block, L.LSTM(3, name="top"), L.Dense(1, name="out")],
                          name="outer")


def test_functional_inside_sequential_matches_keras(keras):
    km, ours = _functional_in_sequential(keras), _functional_in_sequential(fg)
    assert [w.shape for w in ours.get_weights()] == [tuple(w.shape) for w in km.get_weights()]
    ours.set_weights(km.get_weights())
    xs, ys = fc.data("residual")
    np.testing.assert_allclose(ours.predict(xs[0]), km.predict(xs[0], verbose=0), rtol=1e-5, atol=2e-6)
    km.compile("adam", "mse")
    ours.compile("adam", "mse")
    for _ in range(5):
        np.testing.assert_allclose(ours.train_on_batch(xs[0], ys[0]), km.train_on_batch(xs[0], ys[0]), rtol=1e-4)
    for a, b in zip(ours.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


def test_the_plan_frees_each_intermediate_after_its_last_consumer():
    x = fg.Input((4, 2), name="x")
    h = [L.Dense(3, name=f"d{i}") for i in range(4)]
    a = h[0](x)
    b = h[1](a)
    c = h[2](b)
    out = L.Add(name="sum")([h[3](c), a])  # a lives until the Add; b and c die right after their consumer
    model = fg.Model(x, out)
    steps = {step.layer.name: step for step in model._steps}
    slot = {name: steps[name].outs[0] for name in ("d0", "d1", "d2", "d3")}
    assert slot["d0"] not in steps["d1"].free  # still needed by the Add
    assert slot["d1"] in steps["d2"].free and slot["d2"] in steps["d3"].free
    assert sorted(steps["sum"].free) == sorted([slot["d0"], slot["d3"]])
    assert model._input_slots[0] in steps["d0"].free


@pytest.mark.keras_graph  # eager Keras weighs two outputs' losses otherwise
def test_sample_weights_one_for_all_or_one_per_output_as_keras(keras):
    km, ours = _pair(keras, "two_outputs")
    xs, ys = fc.data("two_outputs", n=10)
    sw = np.linspace(0.1, 2, 10).astype("float32")
    options = dict(loss=["binary_crossentropy", "mse"], metrics=[["accuracy"], ["mae"]])
    km.compile("adam", **options)
    ours.compile("adam", **options)
    # Keras 3's compiled metrics ignore sample_weight; the losses use it
    np.testing.assert_allclose(ours.evaluate(xs[0], ys, sample_weight=sw, verbose=0),
                               km.evaluate(xs[0], ys, sample_weight=sw, verbose=0), rtol=1e-5)
    per_output = [sw, sw[::-1].copy()]
    for _ in range(3):
        np.testing.assert_allclose(ours.train_on_batch(xs[0], ys, sample_weight=per_output),
                                   km.train_on_batch(xs[0], ys, sample_weight=per_output), rtol=1e-5)
    hk = km.fit(xs[0], ys, sample_weight=per_output, batch_size=4, shuffle=False, verbose=0).history
    ho = ours.fit(xs[0], ys, sample_weight=per_output, batch_size=4, shuffle=False, verbose=0).history
    for key in hk:
        np.testing.assert_allclose(ho[key], hk[key], rtol=1e-5)
    for a, b in zip(ours.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match=r"sample_weight has keys \['nope'\]"):
        ours.train_on_batch(xs[0], ys, sample_weight={"nope": sw})


def test_stateful_layers_carry_states_between_calls_and_reset():
    x = fg.Input(batch_shape=(2, 3, 2))
    gru = L.GRU(3, stateful=True)
    model = fg.Model(x, L.Dense(1)(gru(x)))
    ones = np.ones((2, 3, 2), "float32")
    first = model.predict(ones)
    assert not np.allclose(model.predict(ones), first)  # the second call starts from the carried states
    model.reset_states()
    np.testing.assert_allclose(model.predict(ones), first)


@pytest.mark.keras
@pytest.mark.parametrize("return_state", [False, True], ids=["outputs", "outputs-and-states"])
def test_training_through_bidirectional_merge_none_matches_keras(keras, rng, tmp_path, return_state):
    """Bidirectional(merge_mode=None) gives each direction's output (the backward one in input order), and
    with return_state the four LSTM states: all of them feed the head, and training follows Keras."""
    x = rng.standard_normal((8, 6, 3)).astype(np.float32)
    x[0, 4:] = 0.0
    y = rng.integers(0, 3, 8)

    def build(mod, layers):
        inp = mod.Input((6, 3))
        got = layers.Bidirectional(layers.LSTM(4, return_sequences=True, return_state=return_state),
                                   merge_mode=None)(layers.Masking()(inp))
        fwd, bwd = got[0], got[1]
        parts = [layers.GlobalAveragePooling1D()(fwd), layers.GlobalMaxPooling1D()(bwd)] + list(got[2:])
        return mod.Model(inp, layers.Dense(3, activation="softmax")(layers.Concatenate()(parts)))

    km = build(keras, keras.layers)
    km.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.5 for w in km.get_weights()])
    km.save(tmp_path / "k.keras")
    models = [fg.load_model(tmp_path / "k.keras"), build(fg, fg.layers)]
    models[1].set_weights(km.get_weights())
    km.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    for model in models:
        model.compile(optimizer=fg.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    expected = [km.train_on_batch(x, y) for _ in range(5)]
    for model in models:
        np.testing.assert_allclose([model.train_on_batch(x, y) for _ in range(5)], expected, rtol=1e-3)
        for k, o in zip(km.get_weights(), model.get_weights(), strict=True):
            np.testing.assert_allclose(o, k, rtol=1e-3, atol=1e-4 * max(np.abs(k).max(), 1e-3))


def test_a_symbolic_tensor_refuses_what_would_read_its_values():
    """A KerasTensor holds no values: using it as a boolean, converting it to an array (or predicting on
    it) and iterating over it raise Keras 3's exception types with a message naming the tensor, rather
    than ``True``, an object array or an index error from a GetItem node."""
    x = fg.Input((5, 3), name="tokens")
    with pytest.raises(TypeError, match=r"'tokens'\) cannot be used as a boolean"):
        bool(x)
    with pytest.raises(TypeError, match="cannot be used as a boolean"):
        if x > 0:
            pass
    with pytest.raises(ValueError, match=r"'tokens', shape \(None, 5, 3\)\) holds no values"):
        np.asarray(x)
    with pytest.raises(NotImplementedError, match="iterating over a symbolic KerasTensor"):
        list(x)
    model = fg.Model(x, fg.layers.GRU(2)(x))
    with pytest.raises(ValueError, match="input 'tokens': a symbolic KerasTensor"):
        model.predict(x)
    # what the graph does with tensors still works: identity comparisons, membership, ops
    assert x == x and x in [x] and (x + 1).shape == (None, 5, 3)


def test_outputs_in_nested_lists_predict_and_train_in_their_structure(keras, rng):
    """``Model(i, [[sequence, h, c], head])`` (the feature extractor of ``[layer.output for layer in ...]``):
    predicted in the nested structure, trained on targets given in it, as Keras's."""
    x = rng.standard_normal((4, 5, 3)).astype(np.float32)
    results = []
    for k in (keras, fg):
        inputs = k.Input((5, 3))
        sequence, h, c = k.layers.LSTM(4, return_sequences=True, return_state=True)(inputs)
        model = k.Model(inputs, [[sequence, h, c], k.layers.Dense(2)(h)])
        if k is keras:
            weights = model.get_weights()
        model.set_weights(weights)
        model.compile(k.optimizers.SGD(0.1), "mse")
        targets = [[np.ones((4, 5, 4), np.float32), np.zeros((4, 4), np.float32), np.zeros((4, 4), np.float32)],
                   np.ones((4, 2), np.float32)]
        model.fit(x, targets, epochs=2, batch_size=2, shuffle=False, verbose=0)
        results.append((model.predict(x, verbose=0), model.evaluate(x, targets, verbose=0)))
    (theirs, their_losses), (ours, our_losses) = results
    assert isinstance(ours, list) and isinstance(ours[0], list) and len(ours[0]) == 3
    for a, b in zip(ours[0] + [ours[1]], theirs[0] + [theirs[1]]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(our_losses, their_losses, rtol=1e-5)
