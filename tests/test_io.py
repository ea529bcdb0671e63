"""Keras files without TensorFlow: the committed fixtures (made by tests/fixtures/make_fixtures.py)
load and predict like Keras did; damaged, foreign and unsupported files give specific errors."""

from __future__ import annotations

import json
import shutil
import warnings
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

import fastgru as fg
from fastgru.layers import GRU, Dense, Input

FILES = Path(__file__).parent / "fixtures" / "files"
ATOL = 2e-5

MODEL_FILES = [
    ("k3_gru_default.keras", "k3_gru_default"),
    ("k3_gru_options.keras", "k3_gru_options"),
    ("k3_gru_options.h5", "k3_gru_options"),
    ("k3_embedding.keras", "k3_embedding"),
    ("k3_functional.keras", "k3_functional"),
    ("k3_nested.keras", "k3_nested"),
    ("k2_hard_sigmoid.h5", "k2_hard_sigmoid"),
    ("k2_masking.h5", "k2_masking"),
    ("k2_functional.h5", "k2_functional"),  # tf_keras Functional chain: Embedding(mask_zero), hard_sigmoid
    ("k2_keras_format.keras", "k2_keras_format"),  # tf_keras writing the .keras zip format
    ("k3_nested.h5", "k3_nested_files"),  # Keras 3 legacy HDF5 with a nested Sequential (one weight group)
]


def expected(name):
    with np.load(FILES / f"{name}.npz") as f:
        return f["x"], f["y"]


@pytest.mark.parametrize("filename,name", MODEL_FILES)
def test_fixture_predicts_like_keras(filename, name):
    x, y = expected(name)
    model = fg.load_model(FILES / filename)
    np.testing.assert_allclose(model.predict(x), y, atol=ATOL, rtol=1e-4)


def test_keras2_hard_sigmoid_semantics_come_from_the_file():
    model = fg.load_model(FILES / "k2_hard_sigmoid.h5")
    assert model.layers[0].recurrent_activation == "hard_sigmoid_keras2"
    assert model.keras_version.startswith("2.")
    k3 = fg.load_model(FILES / "k3_gru_options.keras")
    assert k3.layers[1].recurrent_activation == "hard_sigmoid"
    # the .keras zip written by tf_keras: the version comes from metadata.json
    k2_zip = fg.load_model(FILES / "k2_keras_format.keras")
    assert k2_zip.keras_version.startswith("2.") and k2_zip.layers[1].recurrent_activation == "hard_sigmoid_keras2"
    k2_functional = fg.load_model(FILES / "k2_functional.h5")
    # (a Functional chain's model.layers as Keras's: the InputLayer first)
    assert [type(l).__name__ for l in k2_functional.layers] == ["InputLayer", "Embedding", "GRU", "GRU", "Dense"]
    assert k2_functional.layers[2].recurrent_activation == "hard_sigmoid_keras2"


def test_keras2_config_without_reset_after_means_reset_before(tmp_path):
    """Keras before 2.1.3 had no reset_after option: its GRU computed the reset gate first."""
    shutil.copy(FILES / "k2_hard_sigmoid.h5", tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5", "a") as f:
        config = json.loads(f.attrs["model_config"])
        gru = next(e for e in config["config"]["layers"] if e["class_name"] == "GRU" and not e["config"]["reset_after"])
        del gru["config"]["reset_after"]
        f.attrs["model_config"] = json.dumps(config)
    x, y = expected("k2_hard_sigmoid")
    model = fg.load_model(tmp_path / "m.h5")
    assert model.layers[1].reset_after is False
    np.testing.assert_allclose(model.predict(x), y, atol=ATOL, rtol=1e-4)


def test_layer_names_options_and_weight_order_survive():
    model = fg.load_model(FILES / "k3_gru_options.keras")
    gru = model.layers[1]
    assert (gru.go_backwards, gru.reset_after, gru.return_sequences) == (True, False, True)
    assert [type(l).__name__ for l in model.layers] == ["Masking", "GRU", "GRU", "GRU", "Dropout", "Dense"]
    assert model.layers[2].use_bias is False and model.layers[2].activation == "relu"
    functional = fg.load_model(FILES / "k3_functional.keras")
    names = [l.name for l in functional.layers]  # (the InputLayer first, as Keras's Functional model lists it)
    assert names[1] == "encoder" and names[3:] == ["decoder", "head"] and names[2].startswith("dropout")


@pytest.mark.parametrize("weights_file,model_file,name", [
    ("k3_gru_options.weights.h5", "k3_gru_options.keras", "k3_gru_options"),
    ("k2_hard_sigmoid_weights.h5", "k2_hard_sigmoid.h5", "k2_hard_sigmoid"),
    # a nested Keras model: weights under layers/sequential/layers/..., found from where the model came from
    ("k3_nested.weights.h5", "k3_nested.keras", "k3_nested_files"),
    # legacy file whose one group holds the nested model's four weights: the flat lists pair in order
    ("k3_nested.h5", "k3_nested.keras", "k3_nested_files"),
])
def test_load_weights(weights_file, model_file, name):
    x, y = expected(name)
    model = fg.load_model(FILES / model_file)
    model.set_weights([np.zeros_like(w) for w in model.get_weights()])
    model.load_weights(FILES / weights_file)
    np.testing.assert_allclose(model.predict(x), y, atol=ATOL, rtol=1e-4)


def test_save_and_load_round_trip(tmp_path):
    original = fg.load_model(FILES / "k3_gru_options.keras")
    original.save(tmp_path / "copy.keras")
    x, y = expected("k3_gru_options")
    np.testing.assert_allclose(fg.load_model(tmp_path / "copy.keras").predict(x), y, atol=ATOL, rtol=1e-4)
    original.save_weights(tmp_path / "copy.weights.h5")
    fresh = fg.Sequential.from_config(original.get_config())
    fresh.build(original.input_shape)
    fresh.load_weights(tmp_path / "copy.weights.h5")
    np.testing.assert_allclose(fresh.predict(x), y, atol=ATOL, rtol=1e-4)


def test_keras2_hard_sigmoid_cannot_be_saved_as_keras3(tmp_path):
    model = fg.load_model(FILES / "k2_hard_sigmoid.h5")
    with pytest.raises(fg.UnsupportedKerasFeature, match="Keras 2's hard_sigmoid has no Keras 3 equivalent"):
        model.save(tmp_path / "m.keras")
    assert not (tmp_path / "m.keras").exists()
    model.save_weights(tmp_path / "m.weights.h5")  # the weights alone are fine


def test_save_requires_keras_suffixes(tmp_path):
    model = fg.Sequential([Input((3, 2)), GRU(2)])
    with pytest.raises(ValueError, match="must end in .keras"):
        model.save(tmp_path / "m.hd5")
    with pytest.warns(UserWarning, match="legacy"):  # (.h5: Keras 3's legacy file, tests/test_fuzz53_fixes.py)
        model.save(tmp_path / "m.h5")
    with pytest.raises(ValueError, match="must end in .weights.h5"):
        model.save_weights(tmp_path / "m.h5")


# ---- errors ------------------------------------------------------------------------------------
def test_missing_and_empty_and_foreign_files(tmp_path):
    with pytest.raises(fg.ModelFileError, match="nope.keras: no such file"):
        fg.load_model(tmp_path / "nope.keras")
    (tmp_path / "empty.keras").write_bytes(b"")
    with pytest.raises(fg.ModelFileError, match="empty.keras: the file is empty"):
        fg.load_model(tmp_path / "empty.keras")
    (tmp_path / "model.keras").write_text("hello, not a model")
    with pytest.raises(fg.ModelFileError, match=r"model.keras: neither a .keras \(zip\) nor an HDF5 file"):
        fg.load_model(tmp_path / "model.keras")
    with pytest.raises(fg.ModelFileError, match="is a directory"):
        fg.load_model(tmp_path)


def test_truncated_files(tmp_path):
    for name in ("k3_gru_default.keras", "k2_masking.h5"):
        data = (FILES / name).read_bytes()
        broken = tmp_path / name
        broken.write_bytes(data[: len(data) // 2])
        with pytest.raises(fg.ModelFileError, match=str(broken.name)):
            fg.load_model(broken)


def test_zip_without_config_or_weights(tmp_path):
    with zipfile.ZipFile(tmp_path / "a.keras", "w") as z:
        z.writestr("metadata.json", "{}")
    with pytest.raises(fg.ModelFileError, match="no config.json in the .keras archive"):
        fg.load_model(tmp_path / "a.keras")
    with zipfile.ZipFile(FILES / "k3_gru_default.keras") as src, zipfile.ZipFile(tmp_path / "b.keras", "w") as z:
        z.writestr("config.json", src.read("config.json"))
    with pytest.raises(fg.ModelFileError, match="no model.weights.h5"):
        fg.load_model(tmp_path / "b.keras")
    with zipfile.ZipFile(tmp_path / "c.keras", "w") as z:
        z.writestr("config.json", "{not json")
        z.writestr("model.weights.h5", b"")
    with pytest.raises(fg.ModelFileError, match="damaged .keras archive"):
        fg.load_model(tmp_path / "c.keras")


def rewrite_zip(src, dst, config=None, weights=None):
    with zipfile.ZipFile(src) as a, zipfile.ZipFile(dst, "w") as b:
        for item in a.namelist():
            data = a.read(item)
            if item == "config.json" and config is not None:
                data = json.dumps(config(json.loads(data)))
            if item == "model.weights.h5" and weights is not None:
                data = weights(data, dst)
            b.writestr(item, data)


def test_weight_shape_disagreeing_with_config(tmp_path):
    def widen(cfg):
        cfg["config"]["layers"][1]["config"]["units"] = 6  # the file's weights are for 5 units
        return cfg

    rewrite_zip(FILES / "k3_gru_default.keras", tmp_path / "m.keras", config=widen)
    message = r"layers/gru/cell/vars .*has shape \(4, 15\), but the config implies \(4, 18\)"
    with pytest.raises(fg.ModelFileError, match=message):
        fg.load_model(tmp_path / "m.keras")


def test_missing_weights_group(tmp_path):
    def drop_dense(data, dst):
        tmp = dst.with_suffix(".h5")
        tmp.write_bytes(data)
        with h5py.File(tmp, "a") as f:
            del f["layers/dense"]
        return tmp.read_bytes()

    rewrite_zip(FILES / "k3_gru_default.keras", tmp_path / "m.keras", weights=drop_dense)
    with pytest.raises(fg.ModelFileError, match="missing HDF5 group /layers/dense"):
        fg.load_model(tmp_path / "m.keras")


def layer_group(f, prefix):
    """Name of the first layer group whose name starts with ``prefix`` (names carry counters)."""
    names = [n.decode() if isinstance(n, bytes) else n for n in f["model_weights"].attrs["layer_names"]]
    return next(n for n in names if n.startswith(prefix))


def test_nan_weights_in_file(tmp_path):
    shutil.copy(FILES / "k2_masking.h5", tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5", "a") as f:
        group = f["model_weights"][layer_group(f, "dense")]
        ds = group[group.attrs["weight_names"][0]]
        values = ds[()]
        values[0, 0] = np.nan
        ds[...] = values
    with pytest.raises(fg.ModelFileError, match="contains NaN or infinite values"):
        fg.load_model(tmp_path / "m.h5")


def test_legacy_h5_missing_config_and_weights_only(tmp_path):
    with h5py.File(tmp_path / "plain.h5", "w") as f:
        f.create_dataset("data", data=np.arange(3))
    with pytest.raises(fg.ModelFileError, match="without a Keras model_config attribute"):
        fg.load_model(tmp_path / "plain.h5")
    with pytest.raises(fg.ModelFileError, match="a weights-only file"):
        fg.load_model(FILES / "k2_hard_sigmoid_weights.h5")
    shutil.copy(FILES / "k2_masking.h5", tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5", "a") as f:
        f.attrs["model_config"] = "{broken"
    with pytest.raises(fg.ModelFileError, match="attribute 'model_config' is not valid JSON"):
        fg.load_model(tmp_path / "m.h5")


def test_legacy_weight_names_attribute_in_chunks(tmp_path):
    """Keras splits long attributes into name0, name1, ...; both spellings must load."""
    shutil.copy(FILES / "k2_masking.h5", tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5", "a") as f:
        group = f["model_weights"][layer_group(f, "gru")]
        names = list(group.attrs["weight_names"])
        del group.attrs["weight_names"]
        group.attrs["weight_names0"] = names[:2]
        group.attrs["weight_names1"] = names[2:]
    x, y = expected("k2_masking")
    np.testing.assert_allclose(fg.load_model(tmp_path / "m.h5").predict(x), y, atol=ATOL, rtol=1e-4)


def test_unsupported_layer_and_options(tmp_path):
    # made when fastgru had no Conv1D (hence its name); it loads now (parity: tests/test_conv_pooling.py)
    conv = fg.load_model(FILES / "k3_conv1d_unsupported.keras")
    assert [type(layer).__name__ for layer in conv.layers] == ["Conv1D", "GRU"]

    def mutate(change):
        def apply(cfg):
            change(cfg["config"]["layers"][1])
            return cfg
        return apply

    cases = [
        (lambda e: e.update(class_name="MyCustomGRU"), "'MyCustomGRU' is not supported"),
        (lambda e: e.update(class_name="ConvLSTM3D"), "'ConvLSTM3D' is not supported by fastgru .a Keras layer"),
        (lambda e: e["config"].update(activation="tanh_shrink"),
         r"\(GRU\): activation: activation 'tanh_shrink' is not supported"),
        (lambda e: e["config"].update(time_major=True), r"option time_major=True is not supported"),
        (lambda e: e["config"].update(something_new=3), r"option 'something_new'"),
    ]
    for i, (change, message) in enumerate(cases):
        rewrite_zip(FILES / "k3_gru_default.keras", tmp_path / f"m{i}.keras", config=mutate(change))
        with pytest.raises(fg.UnsupportedKerasFeature, match=message):
            fg.load_model(tmp_path / f"m{i}.keras")


def test_branching_functional_model_without_weights_for_a_branch_is_refused(tmp_path):
    def branch(cfg):
        layers = cfg["config"]["layers"]
        extra = json.loads(json.dumps(layers[-1]))
        extra["config"]["name"] = "second_head"
        extra["name"] = "second_head"
        layers.append(extra)
        return cfg

    rewrite_zip(FILES / "k3_functional.keras", tmp_path / "f.keras", config=branch)
    # branching graphs load since issue 14 (fastgru.Model): this file's second head has no weights in it
    with pytest.raises(fg.ModelFileError, match="missing HDF5 group /layers/dense_1/vars"):
        fg.load_model(tmp_path / "f.keras")


def test_load_weights_errors(tmp_path):
    model = fg.Sequential([Input((6, 4)), GRU(7), Dense(3)])
    with pytest.raises(fg.ModelFileError, match=r"has shape \(4, 15\), but the config implies \(4, 21\)"):
        model.load_weights(FILES / "k3_gru_default.keras")
    two_layer = fg.Sequential([Input((6, 4)), GRU(5)])
    with pytest.raises(fg.ModelFileError, match="the file has weights for 3 layers"):
        two_layer.load_weights(FILES / "k2_hard_sigmoid_weights.h5")
    with pytest.raises(ValueError, match="needs a built model"):
        fg.Sequential([GRU(2)]).load_weights(FILES / "k3_gru_options.weights.h5")


def gru_entry_mutation(change):
    """A config.json rewriter that applies ``change`` to k3_gru_default's GRU entry."""
    def apply(cfg):
        change(cfg["config"]["layers"][1])
        return cfg
    return apply


@pytest.mark.parametrize("change,message", [
    (lambda e: e["config"].update(units="5"), r"gru \(GRU\): option 'units' should be a positive integer, found '5'"),
    (lambda e: e["config"].update(go_backwards="yes"), r"option 'go_backwards' should be True or False, found 'yes'"),
    (lambda e: e["config"].update(dropout=1.5), r"option 'dropout' should be a number in \[0.0, 1.0\], found 1.5"),
    (lambda e: e["config"].update(activation=3), r"option 'activation' should be an activation name"),
    (lambda e: e["config"].update(dtype={"class_name": "DTypePolicy", "config": "float32"}),
     r"dtype policy config is not an object"),
    (lambda e: e.update(class_name=None), r"layer 1: expected a layer entry with 'class_name'"),
    (lambda e: e.update(config=[1, 2]), r"the config of GRU is not an object"),
])
def test_malformed_layer_config_is_a_file_error(tmp_path, change, message):
    rewrite_zip(FILES / "k3_gru_default.keras", tmp_path / "m.keras", config=gru_entry_mutation(change))
    with pytest.raises(fg.ModelFileError, match=r"m\.keras: .*" + message):
        fg.load_model(tmp_path / "m.keras")


def test_malformed_model_config_is_a_file_error(tmp_path):
    def no_input_shape(cfg):
        cfg["config"]["layers"].pop(0)  # the InputLayer
        cfg.pop("build_config", None)
        for entry in cfg["config"]["layers"]:
            entry.pop("build_config", None)
        return cfg

    rewrite_zip(FILES / "k3_gru_default.keras", tmp_path / "a.keras", config=no_input_shape)
    with pytest.raises(fg.ModelFileError, match="the model config gives no input shape"):
        fg.load_model(tmp_path / "a.keras")

    def bad_shape(cfg):
        cfg["config"]["layers"][0]["config"]["batch_shape"] = [None, "six", 4]
        return cfg

    rewrite_zip(FILES / "k3_gru_default.keras", tmp_path / "b.keras", config=bad_shape)
    with pytest.raises(fg.ModelFileError, match=r"expected a shape \(a list of positive integers or null\)"):
        fg.load_model(tmp_path / "b.keras")

    def dangling_input(cfg):
        cfg["config"]["layers"][1]["inbound_nodes"][0]["args"][0]["config"]["keras_history"][0] = "ghost"
        return cfg

    rewrite_zip(FILES / "k3_functional.keras", tmp_path / "c.keras", config=dangling_input)
    with pytest.raises(fg.ModelFileError, match="takes its input from 'ghost', which the config does not define"):
        fg.load_model(tmp_path / "c.keras")

    rewrite_zip(FILES / "k3_gru_default.keras", tmp_path / "d.keras", config=lambda cfg: [cfg])
    with pytest.raises(fg.ModelFileError, match="config.json does not hold a model config object"):
        fg.load_model(tmp_path / "d.keras")


def test_model_config_input_shape_falls_back_to_build_config(tmp_path):
    def no_input_layer(cfg):
        cfg["config"]["layers"].pop(0)
        return cfg  # Keras 3 still records build_config: {"input_shape": [null, 6, 4]}

    rewrite_zip(FILES / "k3_gru_default.keras", tmp_path / "m.keras", config=no_input_layer)
    x, y = expected("k3_gru_default")
    np.testing.assert_allclose(fg.load_model(tmp_path / "m.keras").predict(x), y, atol=ATOL, rtol=1e-4)


@pytest.mark.parametrize("change,message", [
    (lambda e: e["config"].update(activation={"module": "builtins", "class_name": "function", "config": "mish",
                                              "registered_name": "function"}),
     r"layer gru \(GRU\): activation: custom activation 'mish' is not supported"),
    (lambda e: e["config"].update(recurrent_activation={"module": "keras.layers", "class_name": "ReLU",
                                                        "config": {"name": "relu", "max_value": 6.0}}),
     r"recurrent_activation: custom activation 'ReLU' is not supported"),
    (lambda e: e["config"].update(dtype="int8_from_float32"), r"option dtype='int8_from_float32' is not supported"),
    (lambda e: e["config"].update(dtype={"module": "keras", "class_name": "QuantizedDTypePolicy",
                                         "config": {"name": "float8_from_mixed_bfloat16"}}),
     r"option dtype='float8_from_mixed_bfloat16' is not supported"),  # (half precision runs: test_mixed_precision.py)
    (lambda e: e["config"].update(reset_after="sometimes"), r"option 'reset_after' should be True or False"),
])
def test_unsupported_activation_and_dtype(tmp_path, change, message):
    rewrite_zip(FILES / "k3_gru_default.keras", tmp_path / "m.keras", config=gru_entry_mutation(change))
    error = fg.ModelFileError if "should be" in message else fg.UnsupportedKerasFeature
    with pytest.raises(error, match=message):
        fg.load_model(tmp_path / "m.keras")


def test_keras1_files_are_refused(tmp_path):
    shutil.copy(FILES / "k2_masking.h5", tmp_path / "old.h5")
    with h5py.File(tmp_path / "old.h5", "a") as f:
        f.attrs["keras_version"] = b"1.2.2"
    with pytest.raises(fg.UnsupportedKerasFeature, match=r"files written by Keras 1\.2\.2 are not supported"):
        fg.load_model(tmp_path / "old.h5")


def test_training_only_options_load_with_a_warning(tmp_path):
    def regularized(e):
        e["config"]["kernel_regularizer"] = {"module": "keras.regularizers", "class_name": "L2",
                                             "config": {"l2": 0.01}, "registered_name": None}
        e["config"]["kernel_initializer"] = {"module": "my_project", "class_name": "MyInit", "config": {},
                                             "registered_name": "MyInit"}
        e["config"]["recurrent_regularizer"] = {"module": "my_project", "class_name": "MyRegularizer",
                                                "config": {"factor": 0.01}, "registered_name": "MyRegularizer"}

    rewrite_zip(FILES / "k3_gru_default.keras", tmp_path / "m.keras", config=gru_entry_mutation(regularized))
    # L1/L2 regularizers are applied in training (tests/test_layers_keras_parity2.py); what fastgru cannot
    # apply (an unknown initializer, a custom regularizer) loads with a warning
    with pytest.warns(UserWarning, match=r"layer gru \(GRU\): kernel_initializer .*MyInit.*recurrent_regularizer"
                                         r".*MyRegularizer"):
        model = fg.load_model(tmp_path / "m.keras")
    assert model.layers[0].weight_regularizers["kernel"].get_config() == {"l2": 0.01}
    assert "recurrent_kernel" not in model.layers[0].weight_regularizers
    x, y = expected("k3_gru_default")
    np.testing.assert_allclose(model.predict(x), y, atol=ATOL, rtol=1e-4)


def test_functional_output_in_the_middle_of_the_chain_loads_as_a_graph(tmp_path):
    def output_in_the_middle(cfg):
        cfg["config"]["output_layers"] = [["encoder", 0, 0]]
        return cfg

    rewrite_zip(FILES / "k3_functional.keras", tmp_path / "f.keras", config=output_in_the_middle)
    # since issue 14 this is a Functional graph (fastgru.Model) computing the encoder's output, as Keras does
    model = fg.load_model(tmp_path / "f.keras")
    chain = fg.load_model(FILES / "k3_functional.keras")
    x = np.load(FILES / "k3_functional.npz")["x"]
    assert model.output_names == ["encoder"]
    np.testing.assert_allclose(model.predict(x), chain.get_layer("encoder")(x), rtol=1e-6)


def test_npz_weights_and_bad_layer_names(tmp_path):
    with zipfile.ZipFile(FILES / "k3_gru_default.keras") as src, zipfile.ZipFile(tmp_path / "n.keras", "w") as z:
        z.writestr("config.json", src.read("config.json"))
        z.writestr("model.weights.npz", b"")
    with pytest.raises(fg.ModelFileError, match="weights_format='npz' are not supported"):
        fg.load_model(tmp_path / "n.keras")
    shutil.copy(FILES / "k2_masking.h5", tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5", "a") as f:
        f["model_weights"].attrs["layer_names"] = np.arange(3)
    with pytest.raises(fg.ModelFileError, match="attribute 'layer_names' of HDF5 group '/model_weights' should list"):
        fg.load_model(tmp_path / "m.h5")


def test_describe_models_and_weight_files():
    text = fg.io.describe(FILES / "k2_keras_format.keras")
    assert "format: Keras v3 format (.keras zip archive)" in text and "keras_version: 2." in text
    assert "gru" in text and "Total params:" in text
    text = fg.io.describe(FILES / "k3_nested.weights.h5")
    assert "format: Keras 3 weights file (.weights.h5)" in text and "weights only" in text
    assert "layers/sequential/layers/gru/cell/vars/0" in text and "(3, 12)" in text and "Total params: 279" in text
    text = fg.io.describe(FILES / "k2_hard_sigmoid_weights.h5")
    assert "legacy HDF5 weights (.h5) written by Keras 2." in text and "Total params: 254" in text


def test_cli_info_and_predict(tmp_path, capsys):
    from fastgru.cli import main

    assert main(["info", str(FILES / "k2_masking.h5")]) == 0
    out = capsys.readouterr().out
    assert "keras_version: 2." in out and "legacy HDF5" in out and "(GRU)" in out and "Total params: 113" in out
    x, y = expected("k3_gru_default")
    np.save(tmp_path / "x.npy", x)
    assert main(["predict", str(FILES / "k3_gru_default.keras"), str(tmp_path / "x.npy"), "-o",
                 str(tmp_path / "y.npy")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), y, atol=ATOL)
    assert main(["info", str(tmp_path / "x.npy")]) == 2
    assert "ModelFileError" in capsys.readouterr().err


def test_unsupported_training_config_loads_uncompiled_with_a_warning(tmp_path):
    def add_compile(cfg):
        cfg["compile_config"] = {"optimizer": "adam", "loss": "my_custom_loss", "metrics": ["accuracy"]}
        return cfg

    rewrite_zip(FILES / "k3_gru_default.keras", tmp_path / "m.keras", config=add_compile)
    with pytest.warns(UserWarning, match="training configuration is not supported"):
        model = fg.load_model(tmp_path / "m.keras")
    assert not model.compiled
    x, y = expected("k3_gru_default")
    np.testing.assert_allclose(model.predict(x), y, atol=ATOL)

    def supported(cfg):
        cfg["compile_config"] = {"optimizer": "sgd", "loss": "categorical_crossentropy", "metrics": [["accuracy"]]}
        return cfg

    rewrite_zip(FILES / "k3_gru_default.keras", tmp_path / "ok.keras", config=supported)
    model = fg.load_model(tmp_path / "ok.keras")
    assert model.compiled and type(model.optimizer).__name__ == "SGD"


def test_loading_runs_no_initializer(tmp_path, monkeypatch):
    """A model built to receive a file's weights skips the initializers (an orthogonal recurrent
    initializer on a large GRU took seconds): every weight comes from the file."""
    from fastgru import initializers

    model = fg.Sequential([fg.layers.Input(shape=(4, 3)), fg.layers.GRU(5), fg.layers.Dense(2)])
    model.save(tmp_path / "m.keras")

    real_get = initializers.get

    def refusing(identifier):
        real_get(identifier)  # still checked (the constraint), never run

        def run(*args, **kwargs):
            raise AssertionError("an initializer ran while loading")

        return run

    monkeypatch.setattr(initializers, "get", refusing)
    x = np.random.default_rng(0).standard_normal((3, 4, 3)).astype(np.float32)
    loaded = fg.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    loaded = fg.load_model(FILES / "k2_masking.h5")  # a legacy .h5 too
    assert loaded.count_params() > 0


def test_tf_keras_h5_saved_compiled_comes_back_compiled(tmp_path):
    """tf_keras 2.11+ names its optimizers ``Custom>Adam`` and its named metrics ``MeanMetricWrapper`` in
    the training config of an .h5 file (as in a SavedModel): the model comes back compiled, as in Keras."""
    tf_keras = pytest.importorskip("tf_keras")
    L = tf_keras.layers
    km = tf_keras.Sequential([tf_keras.Input((4, 3)), L.GRU(2), L.Dense(1)])
    km.compile(optimizer=tf_keras.optimizers.Adam(0.01), loss="mse", metrics=["mae"])
    km.save(tmp_path / "m.h5")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "loaded uncompiled" warning
        model = fg.load_model(tmp_path / "m.h5")
    assert model.compiled
    x = np.random.default_rng(0).standard_normal((5, 4, 3)).astype(np.float32)
    result = model.evaluate(x, np.zeros((5, 1), np.float32), verbose=0)
    assert len(result) == 2 and all(np.isfinite(result))
