"""Text preprocessing: ``TextVectorization``, ``StringLookup`` and ``IntegerLookup`` against Keras (every option,
``adapt``, models read from Keras's files with their vocabulary among the archive's assets, trained, saved and read
back by Keras), and without TensorFlow on the committed files of tests/fixtures/make_text_fixtures.py."""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

import fastgru as fg
from fastgru.errors import ModelFileError, UnsupportedKerasFeature

FIXTURES = Path(__file__).parent / "fixtures" / "files"
TEXTS = np.array(["The cat sat on the mat!", "A dog, a DOG; and the cat.", "Hello   world\tagain", "",
                  "É café Über naïve", "x-ray's  test_case 3.14", "the the the"])
DATA = np.array(["the cat and the hat", "a dog! a DOG?", "cat cat cat", "e-mail me at x@y.z", "Über über ÜBER"])
WORDS = np.array(["red", "green", "blue", "cyan", "", "RED", "x"])


def _same(ours, theirs):
    theirs = np.asarray(theirs)
    if theirs.dtype == object:  # (an inverted StringLookup gives TensorFlow's strings: bytes, in both)
        assert ours.dtype == object and all(isinstance(v, bytes) for v in ours.ravel())
    assert ours.shape == theirs.shape and ours.dtype.kind == theirs.dtype.kind, (ours, theirs)
    if theirs.dtype.kind == "f":
        assert ours.dtype == theirs.dtype
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7)
    else:
        np.testing.assert_array_equal(ours, theirs)


STRING_LOOKUPS = [
    {}, {"mask_token": ""}, {"output_mode": "one_hot"}, {"output_mode": "multi_hot", "mask_token": ""},
    {"output_mode": "count", "max_tokens": 8, "pad_to_max_tokens": True},
    {"output_mode": "tf_idf", "idf_weights": [0.5, 1.5, 2.0]},
    {"vocabulary": ["[UNK]", "red", "green", "blue"], "output_mode": "tf_idf", "idf_weights": [0.1, 0.5, 1.5, 2.0],
     "max_tokens": 7, "pad_to_max_tokens": True},
    {"num_oov_indices": 0, "mask_token": ""}, {"invert": True}, {"invert": True, "mask_token": ""},
    {"oov_token": "?", "num_oov_indices": 1, "mask_token": "x"},
]


@pytest.mark.keras
@pytest.mark.parametrize("options", STRING_LOOKUPS, ids=[json.dumps(o)[:40] for o in STRING_LOOKUPS])
def test_string_lookup_options_as_keras(keras, options):
    kwargs = {"vocabulary": ["red", "green", "blue"], **options}
    ours, theirs = fg.layers.StringLookup(**kwargs), keras.layers.StringLookup(**kwargs)
    rng = np.random.default_rng(0)
    if options.get("invert"):
        x = rng.integers(-1, 7, (5, 3))
    elif options.get("num_oov_indices") == 0:
        x = rng.choice(np.array(["red", "green", "blue", ""]), (5, 3))
    else:
        x = rng.choice(WORDS, (5, 3))
    _same(ours(x), theirs(x))
    assert ours.get_vocabulary() == theirs.get_vocabulary()
    assert ours.vocabulary_size() == theirs.vocabulary_size()
    if not options.get("invert"):
        _same(ours(x[:, 0]), theirs(x[:, 0]))  # (one axis: one sample of tokens, in the encodings)


@pytest.mark.keras
@pytest.mark.parametrize("options", [{}, {"max_tokens": 4}, {"output_mode": "tf_idf"},
                                     {"mask_token": "", "output_mode": "multi_hot"},
                                     {"output_mode": "count", "max_tokens": 6, "pad_to_max_tokens": True}])
def test_adapt_learns_keras_vocabulary(keras, options):
    """Counts, ties broken by the token (both descending), the special tokens left out, max_tokens; a 1-D array
    holds one token per document (TF-IDF's document counts), an iterable's 1-D batch is one document."""
    data = np.random.default_rng(1).choice(WORDS, (20, 4))
    for adapt_data in (data, data[:, 0], [data[:7], data[7:]], [data[:7, 0], data[7:, 1]]):
        ours, theirs = fg.layers.StringLookup(**options), keras.layers.StringLookup(**options)
        batches = isinstance(adapt_data, list)  # (an iterable of batches: a fresh iterator for each layer)
        ours.adapt(iter(adapt_data) if batches else adapt_data)
        theirs.adapt(iter(adapt_data) if batches else adapt_data)
        assert ours.get_vocabulary() == theirs.get_vocabulary()
        _same(ours(data), theirs(data))


@pytest.mark.keras
@pytest.mark.parametrize("options", [{"vocabulary": [3, 5, 7]}, {"vocabulary": [3, 5, 7], "mask_token": 0},
                                     {"vocabulary": [3, 5, 7], "num_oov_indices": 3},
                                     {"vocabulary": [3, 5, 7], "invert": True},
                                     {"vocabulary": [3, 5, 7], "output_mode": "multi_hot", "num_oov_indices": 2},
                                     {"max_tokens": 5}, {"output_mode": "count"}])
def test_integer_lookup_as_keras(keras, options):
    rng = np.random.default_rng(2)
    x = rng.integers(-3, 12, (6, 4)) if not options.get("invert") else rng.integers(-1, 6, (4, 4))
    ours, theirs = fg.layers.IntegerLookup(**options), keras.layers.IntegerLookup(**options)
    if "vocabulary" not in options:
        ours.adapt(x)
        theirs.adapt(x)
    assert ours.get_vocabulary() == [int(v) for v in theirs.get_vocabulary()]
    _same(ours(x), theirs(x))


VECTORIZATIONS = [
    {}, {"output_sequence_length": 4}, {"max_tokens": 6, "output_sequence_length": 8}, {"standardize": "lower"},
    {"standardize": None}, {"standardize": "strip_punctuation"}, {"split": "character", "output_sequence_length": 12},
    {"split": None}, {"split": None, "output_sequence_length": 3}, {"ngrams": 2}, {"ngrams": (1, 3), "max_tokens": 30},
    {"output_mode": "multi_hot"}, {"output_mode": "count", "max_tokens": 10, "pad_to_max_tokens": True},
    {"output_mode": "tf_idf"}, {"output_mode": "tf_idf", "ngrams": 2, "max_tokens": 12, "pad_to_max_tokens": True},
    {"split": None, "output_mode": "one_hot"},
]


@pytest.mark.keras
@pytest.mark.parametrize("options", VECTORIZATIONS, ids=[json.dumps(o)[:40] for o in VECTORIZATIONS])
def test_text_vectorization_as_keras(keras, options):
    """Standardization (ASCII lower-casing: "É" stays, as TensorFlow's), ASCII-whitespace and character splits,
    n-grams width by width, padding or cutting to output_sequence_length, the encodings; texts (B,) and (B, 1)."""
    ours, theirs = fg.layers.TextVectorization(**options), keras.layers.TextVectorization(**options)
    ours.adapt(DATA)
    theirs.adapt(DATA)
    assert ours.get_vocabulary() == theirs.get_vocabulary()
    for x in (TEXTS, TEXTS[:, None]):
        _same(ours(x), theirs(x))
    assert ours.compute_output_shape((None, 1)) == tuple(theirs.compute_output_shape((None, 1)))


@pytest.mark.keras
def test_a_keras_text_classifier_loads_trains_and_saves_as_keras(keras, tmp_path):
    """An adapted TextVectorization (its vocabulary among the archive's assets) -> Embedding(mask_zero) -> GRU, as a
    Functional and as a Sequential model: the predictions, two epochs of fit, Keras reading fastgru's file back,
    pickle and from_keras."""
    import tensorflow as tf

    y = (np.arange(len(TEXTS)) % 2).astype("float32")[:, None]
    keras.utils.set_random_seed(0)
    vectorize = keras.layers.TextVectorization(max_tokens=20, output_sequence_length=6)
    vectorize.adapt(TEXTS)
    inp = keras.Input((1,), dtype="string")
    h = keras.layers.GRU(3)(keras.layers.Embedding(20, 4, mask_zero=True)(vectorize(inp)))
    functional = keras.Model(inp, keras.layers.Dense(1, activation="sigmoid")(h))
    sequential = keras.Sequential([keras.Input((1,), dtype="string"), vectorize, keras.layers.Embedding(20, 4),
                                   keras.layers.GRU(3), keras.layers.Dense(1, activation="sigmoid")])
    for km in (functional, sequential):
        km.save(tmp_path / "m.keras")
        ours = fg.load_model(tmp_path / "m.keras")
        expected = np.asarray(km(tf.constant(TEXTS[:, None])))
        np.testing.assert_allclose(ours.predict(TEXTS), expected, rtol=1e-5, atol=1e-6)  # ((B,) texts too)
        np.testing.assert_allclose(ours.predict(list(TEXTS), batch_size=3), expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(fg.from_keras(km).predict(TEXTS[:, None]), expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(pickle.loads(pickle.dumps(ours)).predict(TEXTS), expected, rtol=1e-5, atol=1e-6)
        ours.save(tmp_path / "ours.keras")
        back = keras.models.load_model(tmp_path / "ours.keras")
        np.testing.assert_allclose(np.asarray(back(tf.constant(TEXTS[:, None]))), expected, rtol=1e-5, atol=1e-6)
        km.compile(keras.optimizers.Adam(0.01), "binary_crossentropy", metrics=["accuracy"])
        ours.compile(fg.optimizers.Adam(0.01), "binary_crossentropy", metrics=["accuracy"])
        theirs = km.fit(tf.data.Dataset.from_tensor_slices((TEXTS[:, None], y)).batch(3), epochs=2, verbose=0)
        mine = ours.fit(TEXTS[:, None], y, batch_size=3, epochs=2, shuffle=False, verbose=0)
        for key in ("loss", "accuracy"):
            np.testing.assert_allclose(mine.history[key], theirs.history[key], rtol=1e-5)
        for a, b in zip(ours.get_weights(), km.get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.keras
def test_tf_idf_weights_are_read_and_written_where_keras_keeps_them(keras, tmp_path):
    """A TF-IDF layer's weights live in the weights file under ``vars/idf_weights`` (and, for TextVectorization, its
    ``_lookup_layer``'s too): read from Keras's file, written back where Keras's ``load_own_variables`` reads them."""
    import tensorflow as tf

    bag = keras.layers.TextVectorization(max_tokens=20, output_mode="tf_idf", ngrams=2, pad_to_max_tokens=True)
    bag.adapt(DATA)
    lookup = keras.layers.StringLookup(output_mode="tf_idf")
    lookup.adapt(np.random.default_rng(3).choice(WORDS, (9, 3)))
    words = keras.Input((3,), dtype="string")
    km = keras.Sequential([keras.Input((1,), dtype="string"), bag, keras.layers.Dense(2)])
    lm = keras.Model(words, keras.layers.Dense(2)(lookup(words)))
    x_words = np.random.default_rng(4).choice(WORDS, (5, 3))
    for model, x in ((km, TEXTS[:, None]), (lm, x_words)):
        model.save(tmp_path / "m.keras")
        ours = fg.load_model(tmp_path / "m.keras")
        expected = np.asarray(model(tf.constant(x)))
        np.testing.assert_allclose(ours.predict(x), expected, rtol=1e-5, atol=1e-6)
        ours.save(tmp_path / "ours.keras")
        np.testing.assert_allclose(np.asarray(keras.models.load_model(tmp_path / "ours.keras")(tf.constant(x))),
                                   expected, rtol=1e-5, atol=1e-6)


def test_committed_text_classifier_predicts_and_trains_as_keras(tmp_path):
    """Without TensorFlow: Keras's file (an adapted vocabulary among its assets), Keras's predictions, two epochs of
    fit (batch 4, in order) giving Keras's history and weights; saved and read back."""
    ref = np.load(FIXTURES / "text_classifier.npz")
    model = fg.load_model(FIXTURES / "text_classifier.keras")
    texts = ref["texts"]
    np.testing.assert_allclose(model.predict(texts[:, None]), ref["predictions"], rtol=1e-5, atol=1e-6)
    model.save(tmp_path / "again.keras")
    np.testing.assert_array_equal(fg.load_model(tmp_path / "again.keras").predict(texts), model.predict(texts))
    history = model.fit(texts[:, None], ref["labels"], batch_size=4, epochs=2, shuffle=False, verbose=0).history
    for key in ("loss", "accuracy"):
        np.testing.assert_allclose(history[key], ref[f"history_{key}"], rtol=1e-5)
    for j, w in enumerate(model.get_weights()):
        np.testing.assert_allclose(w, ref[f"w{j}"], rtol=1e-4, atol=1e-6)


def test_committed_tf_idf_and_lookup_models_predict_as_keras():
    ref = np.load(FIXTURES / "text_tfidf.npz")
    model = fg.load_model(FIXTURES / "text_tfidf.keras")
    np.testing.assert_allclose(model.predict(ref["texts"]), ref["predictions"], rtol=1e-5, atol=1e-6)
    ref = np.load(FIXTURES / "char_lookup.npz")
    model = fg.load_model(FIXTURES / "char_lookup.keras")
    np.testing.assert_allclose(model.predict([ref["chars"], ref["ids"]]), ref["predictions"], rtol=1e-5, atol=1e-6)
    lookup = next(layer for layer in model.layers if type(layer).__name__ == "StringLookup")
    assert lookup.get_vocabulary()[:2] == ["", "[UNK]"] and lookup.vocabulary_size() > 10


def _rewritten(path: Path, out: Path, change) -> Path:
    """A copy of a .keras archive with ``change(members: dict)`` applied."""
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    change(members)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    out.write_bytes(buffer.getvalue())
    return out


def _set_vocabulary(members, value):
    config = json.loads(members["config.json"])
    for layer in config["config"]["layers"]:
        if layer["class_name"] == "TextVectorization":
            layer["config"]["vocabulary"] = value
    members["config.json"] = json.dumps(config).encode()


def test_hostile_vocabularies_are_refused(tmp_path):
    """A config naming a file to read as the vocabulary is refused (nothing outside the model file is read); a
    missing, damaged or not UTF-8 vocabulary asset is a ModelFileError naming it."""
    source = FIXTURES / "text_classifier.keras"
    asset = "assets/layers/text_vectorization/vocabulary.txt"
    with pytest.raises(ModelFileError, match="vocabulary"):
        fg.load_model(_rewritten(source, tmp_path / "path.keras", lambda m: _set_vocabulary(m, "/etc/passwd")))

    def drop(members):
        for name in [n for n in members if n.startswith("assets/")]:
            del members[name]
    with pytest.raises(ModelFileError, match="has no vocabulary"):
        fg.load_model(_rewritten(source, tmp_path / "none.keras", drop))
    with pytest.raises(ModelFileError, match="vocabulary.txt"):
        fg.load_model(_rewritten(source, tmp_path / "bytes.keras", lambda m: m.update({asset: b"\n[UNK]\n\xff\xfe"})))
    with pytest.raises(ModelFileError, match="vocabulary"):  # (more tokens than the layer may hold)
        fg.load_model(_rewritten(source, tmp_path / "big.keras",
                                 lambda m: m.update({asset: "\n".join(map(str, range(500))).encode()})))


def test_inputs_and_options_are_checked_with_clear_errors():
    model = fg.Sequential([fg.Input((1,), dtype="string"), fg.layers.TextVectorization(vocabulary=["a", "b"]),
                           fg.layers.Embedding(4, 2)])
    with pytest.raises(TypeError, match="expects strings"):
        model.predict(np.zeros((2, 1)))
    with pytest.raises(ValueError, match="expects strings of shape"):
        model.predict(np.array([[["a", "b"], ["c", "d"]]]))
    numeric = fg.Model(inp := fg.Input((3,)), fg.layers.Dense(1)(inp))
    with pytest.raises(TypeError, match="dtype='string'"):
        numeric.predict(np.array([["a", "b", "c"]]))
    with pytest.raises(UnsupportedKerasFeature, match="sparse"):
        fg.layers.StringLookup(vocabulary=["a"], output_mode="multi_hot", sparse=True)
    with pytest.raises(UnsupportedKerasFeature, match="salt"):
        fg.layers.StringLookup(vocabulary=["a"], num_oov_indices=2, salt=3)
    with pytest.raises(UnsupportedKerasFeature, match="salt"):
        fg.layers.Hashing(5, salt=[1, 2])
    with pytest.raises(UnsupportedKerasFeature, match="ragged"):
        fg.layers.TextVectorization(output_mode="one_hot")
    with pytest.raises(ValueError, match="repeats"):
        fg.layers.StringLookup(vocabulary=["a", "b", "a"])
    with pytest.raises(ValueError, match="num_oov_indices=0"):
        fg.layers.StringLookup(vocabulary=["a"], num_oov_indices=0)(np.array(["a", "zz"]))
    with pytest.raises(ValueError, match="Cannot adapt"):
        fg.layers.StringLookup(vocabulary=["a"]).adapt(np.array(["b"]))
    with pytest.raises(RuntimeError, match="needs its vocabulary"):
        fg.layers.StringLookup(output_mode="multi_hot")(np.array([["a"]]))


def test_vocabulary_file_adapt_from_batches_and_training_from_scratch(tmp_path):
    """fastgru's own text model: a vocabulary file, adapt over a generator of batches, fit on strings, the
    vocabulary kept by save (in the config, where Keras reads it too) and pickle."""
    (tmp_path / "vocab.txt").write_text("cat\ndog\nthe\n", encoding="utf-8")
    lookup = fg.layers.StringLookup(vocabulary=str(tmp_path / "vocab.txt"))
    assert lookup.get_vocabulary() == ["[UNK]", "cat", "dog", "the"]
    vectorize = fg.layers.TextVectorization(max_tokens=12, output_sequence_length=5)
    vectorize.adapt(batch for batch in (DATA[:2], DATA[2:]))
    fg.set_random_seed(0)
    model = fg.Sequential([fg.Input((1,), dtype="string"), vectorize, fg.layers.Embedding(12, 4, mask_zero=True),
                           fg.layers.GRU(3), fg.layers.Dense(1)])
    model.compile("adam", "mse")
    history = model.fit(DATA, np.ones((len(DATA), 1), "float32"), epochs=3, batch_size=2, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]
    model.save(tmp_path / "m.keras")
    np.testing.assert_array_equal(fg.load_model(tmp_path / "m.keras").predict(TEXTS), model.predict(TEXTS))
    np.testing.assert_array_equal(model.predict([str(TEXTS[1])]), model.predict(TEXTS[1:2]))  # (a list of one text)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).predict(TEXTS), model.predict(TEXTS))
    assert model.layers[0].get_config()["vocabulary"] == vectorize.get_vocabulary()


@pytest.mark.keras
@pytest.mark.parametrize("mode", ["multi_hot", "one_hot", "count"])
def test_category_encoding_as_keras(keras, mode):
    """Ids (B,), (B, 1) and (B, 3), those outside [0, num_tokens) dropped as TensorFlow's bincount drops them."""
    rng = np.random.default_rng(5)
    ours, theirs = fg.layers.CategoryEncoding(5, output_mode=mode), keras.layers.CategoryEncoding(5, output_mode=mode)
    for x in (rng.integers(0, 7, (6,)), rng.integers(0, 5, (6, 1)), rng.integers(0, 7, (6, 3))):
        _same(ours(x), theirs(x))
        assert ours.compute_output_shape(x.shape) == tuple(theirs.compute_output_shape(x.shape))
    with pytest.raises(ValueError, match="non-negative"):
        ours(np.array([[1, -1]]))


@pytest.mark.keras
@pytest.mark.parametrize("mode", ["int", "one_hot", "multi_hot", "count"])
def test_discretization_as_keras(keras, mode, tmp_path):
    """Given boundaries (a value on a boundary goes up, as TensorFlow's Bucketize), and ``adapt`` with ``num_bins``
    over an array and over batches (Keras's approximate quantiles); Keras's adapted config read back."""
    rng = np.random.default_rng(6)
    x = rng.normal(size=(8, 3)).astype("float32")
    x[0, :2] = [0.0, 1.0]
    ours = fg.layers.Discretization(bin_boundaries=[0.0, 1.0, 2.0], output_mode=mode)
    theirs = keras.layers.Discretization(bin_boundaries=[0.0, 1.0, 2.0], output_mode=mode)
    _same(ours(x if mode != "one_hot" else x[:, 0]), theirs(x if mode != "one_hot" else x[:, 0]))
    data = rng.normal(size=(300, 2)) * 3
    for epsilon, source in ((0.01, data), (0.1, data), (0.01, [data[:100], data[100:]])):
        ours = fg.layers.Discretization(num_bins=5, epsilon=epsilon, output_mode=mode)
        theirs = keras.layers.Discretization(num_bins=5, epsilon=epsilon, output_mode=mode)
        ours.adapt(iter(source) if isinstance(source, list) else source)
        theirs.adapt(iter(source) if isinstance(source, list) else source)
        np.testing.assert_allclose(ours.bin_boundaries, theirs.bin_boundaries, rtol=1e-6)
        _same(ours(x), theirs(x)) if mode != "one_hot" else _same(ours(x[:, 0]), theirs(x[:, 0]))
    model = keras.Sequential([keras.Input((3,)), theirs, keras.layers.Dense(2)]) if mode != "int" else \
        keras.Sequential([keras.Input((3,)), theirs, keras.layers.Embedding(6, 2), keras.layers.Flatten()])
    model.save(tmp_path / "m.keras")
    np.testing.assert_allclose(fg.load_model(tmp_path / "m.keras").predict(x), model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.keras
def test_tf_keras_text_models_load_as_tf_keras_computes(tmp_path):
    """tf_keras's ``.keras`` files: its TextVectorization's config names the tokens' dtype ("string") and its
    adapted vocabulary lies among the archive's assets; a vocabulary given in the config works too. (tf_keras cannot
    write such a model to ``.h5``.)"""
    tf_keras = pytest.importorskip("tf_keras")
    import tensorflow as tf

    adapted = tf_keras.layers.TextVectorization(max_tokens=12, output_sequence_length=5)
    adapted.adapt(DATA)
    given = tf_keras.layers.TextVectorization(vocabulary=["the", "cat", "dog", "a"], output_mode="count")
    for vectorize, head in ((adapted, lambda t: tf_keras.layers.GRU(3)(tf_keras.layers.Embedding(12, 4)(t))),
                            (given, lambda t: t)):
        inp = tf_keras.Input((1,), dtype=tf.string)
        model = tf_keras.Model(inp, tf_keras.layers.Dense(2)(head(vectorize(inp))))
        model.save(tmp_path / "m.keras")
        expected = model.predict(tf.constant(TEXTS[:, None]), verbose=0)
        np.testing.assert_allclose(fg.load_model(tmp_path / "m.keras").predict(TEXTS), expected, rtol=1e-5,
                                   atol=1e-6)


@pytest.mark.keras
def test_a_keras_h5_without_the_adapted_vocabulary_is_refused(keras, tmp_path):
    """Keras's ``.h5`` keeps no adapted vocabulary (its own load then fails at the first call): a ModelFileError
    naming the layer, not a model that maps every token to the OOV index."""
    vectorize = keras.layers.TextVectorization(max_tokens=12, output_sequence_length=5)
    vectorize.adapt(DATA)
    inp = keras.Input((1,), dtype="string")
    keras.Model(inp, keras.layers.Dense(1)(keras.layers.Embedding(12, 2)(vectorize(inp)))).save(tmp_path / "m.h5")
    with pytest.raises(ModelFileError, match="text_vectorization.*has no vocabulary.*save the model as .keras"):
        fg.load_model(tmp_path / "m.h5")


def test_fastgru_predict_reads_texts(tmp_path, capsys):
    """``fastgru predict`` on a text model: a .txt of one text per line, or a .npy of strings; Keras's numbers."""
    from fastgru.cli import main

    ref = np.load(FIXTURES / "text_classifier.npz")
    texts = ref["texts"][:6]
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    np.save(tmp_path / "in.npy", texts)
    for source in ("in.txt", "in.npy"):
        assert main(["predict", str(FIXTURES / "text_classifier.keras"), str(tmp_path / source), "-o",
                     str(tmp_path / "out.npy"), "-q"]) == 0
        np.testing.assert_allclose(np.load(tmp_path / "out.npy"), ref["predictions"][:6], rtol=1e-5, atol=1e-6)
    assert main(["predict", str(FIXTURES / "text_tfidf.keras"), str(tmp_path / "in.npy"), "-o",
                 str(tmp_path / "x.npy"), "-q"]) == 0
    np.save(tmp_path / "numbers.npy", np.zeros((2, 1)))
    assert main(["predict", str(FIXTURES / "text_classifier.keras"), str(tmp_path / "numbers.npy"), "-o",
                 str(tmp_path / "bad.npy"), "-q"]) != 0
    assert "expects strings" in capsys.readouterr().err


@pytest.mark.keras
def test_nul_characters_are_kept_as_tensorflow_keeps_them(keras):
    """Texts ending in NUL characters: a fixed-width NumPy "U" array drops them ("a\x00" became "a", "\x00" the
    mask token); fastgru keeps its strings as Python objects, so they are other tokens, as in TensorFlow."""
    import tensorflow as tf

    texts = ["a\x00", "a", "\x00", "x\x00\x00", "b\x00c"]
    for options in ({"split": None}, {}):
        ours = fg.layers.TextVectorization(vocabulary=["a", "b", "x"], **options)
        theirs = keras.layers.TextVectorization(vocabulary=["a", "b", "x"], **options)
        _same(ours(texts), theirs(tf.constant(texts)))
    ours, theirs = fg.layers.StringLookup(), keras.layers.StringLookup()
    ours.adapt(texts)
    theirs.adapt(tf.constant(texts))
    assert ours.vocabulary_size() == theirs.vocabulary_size() == 6
    _same(ours(texts), theirs(tf.constant(texts)))


@pytest.mark.keras
def test_fingerprint64_is_tensorflows():
    """TensorFlow's Fingerprint64 (FarmHash "na"), behind ``tf.strings.to_hash_bucket_fast``: random bytes of every
    length from 0 to 299 (each of its code paths: up to 16, 32, 64 bytes, and the 64-byte rounds), several bucket
    counts."""
    import tensorflow as tf

    from fastgru.ops.farmhash import fingerprint64, hash_buckets

    rng = np.random.default_rng(7)
    data = [bytes(rng.integers(0, 256, n, dtype=np.uint8)) for n in list(range(300)) * 2]
    for buckets in (2**63 - 1, 1000003, 7):
        expected = tf.strings.to_hash_bucket_fast(tf.constant(data), buckets).numpy()
        np.testing.assert_array_equal([fingerprint64(d) % buckets for d in data], expected)
    texts = ["", "a", "Über café", "x" * 100]
    np.testing.assert_array_equal(hash_buckets(texts, 11), tf.strings.to_hash_bucket_fast(texts, 11).numpy())


HASHINGS = [{"num_bins": 7}, {"num_bins": 7, "mask_value": ""}, {"num_bins": 5, "output_mode": "multi_hot"},
            {"num_bins": 6, "output_mode": "one_hot"}, {"num_bins": 4, "output_mode": "count", "mask_value": "red"}]


@pytest.mark.keras
@pytest.mark.parametrize("options", HASHINGS, ids=[json.dumps(o) for o in HASHINGS])
def test_hashing_as_keras(keras, options, tmp_path):
    """Strings (and, without a string mask, integers and floats, hashed as their decimal digits after truncation);
    the mask value in bin 0; the encodings; a model file of Keras's read back."""
    import tensorflow as tf

    rng = np.random.default_rng(8)
    x = rng.choice(WORDS, (6, 1 if options.get("output_mode") == "one_hot" else 4))
    ours, theirs = fg.layers.Hashing(**options), keras.layers.Hashing(**options)
    _same(ours(x), theirs(tf.constant(x)))
    if not isinstance(options.get("mask_value"), str):
        ids = rng.integers(-5, 300, x.shape)
        _same(ours(ids), theirs(ids))
        _same(ours(ids * 0.7), theirs(ids * 0.7))
    inp = keras.Input(x.shape[1:], dtype="string")
    model = keras.Model(inp, keras.layers.Hashing(**options)(inp))
    model.save(tmp_path / "m.keras")
    _same(fg.load_model(tmp_path / "m.keras").predict(x), model(tf.constant(x)))


@pytest.mark.keras
@pytest.mark.parametrize("options", [{"num_oov_indices": 3}, {"num_oov_indices": 2, "mask_token": ""},
                                     {"num_oov_indices": 4, "output_mode": "count"}])
def test_string_lookup_hashes_unknown_tokens_into_oov_buckets_as_keras(keras, options):
    import tensorflow as tf

    x = np.random.default_rng(9).choice(WORDS, (6, 4))
    ours = fg.layers.StringLookup(vocabulary=["red", "blue"], **options)
    theirs = keras.layers.StringLookup(vocabulary=["red", "blue"], **options)
    _same(ours(x), theirs(tf.constant(x)))
    ids = np.random.default_rng(10).integers(-5, 300, (6, 4))
    ours = fg.layers.IntegerLookup(vocabulary=[3, 5], num_oov_indices=3, oov_method="farmhash")
    theirs = keras.layers.IntegerLookup(vocabulary=[3, 5], num_oov_indices=3, oov_method="farmhash")
    _same(ours(ids), theirs(ids))
