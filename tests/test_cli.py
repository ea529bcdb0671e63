"""The ``fastgru`` command: demo, predict, info, bench; bad arguments and bad files; exit codes 0/1/2."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastgru as fg
from fastgru.cli import main
from fastgru.layers import GRU, Dense, Embedding

FIXTURES = Path(__file__).parent / "fixtures" / "files"


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A small GRU model saved as .keras: input (batch, 5, 2), output (batch, 3)."""
    fg.set_random_seed(3)
    model = fg.Sequential([GRU(4, input_shape=(5, 2)), Dense(3, activation="softmax")])
    path = tmp_path_factory.mktemp("model") / "m.keras"
    model.save(path)
    return path, model


@pytest.fixture()
def x():
    return np.random.default_rng(0).normal(size=(7, 5, 2)).astype(np.float32)


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# ---- the command itself -----------------------------------------------------------------------
def test_help_and_usage_errors(capsys):
    code, out, _ = run(["--help"], capsys)
    assert code == 0 and "demo" in out and "predict" in out
    code, _, err = run([], capsys)
    assert code == 2 and "usage: fastgru" in err
    code, _, err = run(["train"], capsys)
    assert code == 2 and "invalid choice: 'train'" in err


def test_exit_status_of_the_installed_command(tmp_path):
    result = subprocess.run([sys.executable, "-m", "fastgru.cli", "predict", str(tmp_path / "missing.keras"),
                             str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy")], capture_output=True, text=True)
    assert result.returncode == 2
    assert "fastgru predict: error: model file" in result.stderr and "does not exist" in result.stderr


# ---- demo ---------------------------------------------------------------------------------------
def test_demo_default_reaches_its_target(tmp_path, capsys):
    code, out, _ = run(["demo", "--out", tmp_path], capsys)
    assert code == 0, out
    accuracy = float(out.split("Test accuracy: ")[1].split()[0])
    assert accuracy >= 0.95
    # summary of GRU(64) + Dense(1) (the layer is "gru" in a fresh process, "gru_<n>" after other tests)
    assert re.search(r"gru(_\d+)? \(GRU\)", out) and "Total params: 12,929" in out
    assert "100/100" in out and "target >= 0.95 met" in out
    assert "predictions identical" in out and "sequences/s" in out and "Training: " in out
    assert (tmp_path / "demo.keras").is_file() and (tmp_path / "demo_x_test.npy").is_file()
    reloaded = fg.load_model(tmp_path / "demo.keras")
    assert [type(l).__name__ for l in reloaded.layers] == ["GRU", "Dense"]
    # the command the demo suggests next
    assert run(["predict", tmp_path / "demo.keras", tmp_path / "demo_x_test.npy", "-o", tmp_path / "p.npy"],
               capsys)[0] == 0
    x_test = np.load(tmp_path / "demo_x_test.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), reloaded.predict(x_test))


def test_demo_japanese_vowels_reaches_its_target(tmp_path, capsys):
    code, out, _ = run(["demo", "--dataset", "japanese-vowels", "--out", tmp_path], capsys)
    assert code == 0, out
    assert float(out.split("Test accuracy: ")[1].split()[0]) >= 0.92
    assert "(Masking)" in out and "(None, 29, 12)" in out and "(None, 9)" in out
    assert [type(l).__name__ for l in fg.load_model(tmp_path / "demo.keras").layers] == ["Masking", "GRU", "Dense"]


def test_demo_short_run_missing_target_exits_1_and_works_without_matplotlib(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    code, out, _ = run(["demo", "--epochs", "1", "--learning-rate", "1e-5", "--out", tmp_path / "new"], capsys)
    assert code == 1 and "NOT met" in out and "1/1" in out
    assert (tmp_path / "new" / "demo.keras").is_file() and not (tmp_path / "new" / "demo_training.png").exists()


def test_demo_writes_the_training_curve_with_matplotlib(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    code, out, _ = run(["demo", "--epochs", "2", "--out", tmp_path], capsys)
    assert code in (0, 1) and (tmp_path / "demo_training.png").stat().st_size > 1000
    assert "Training curves:" in out


@pytest.mark.parametrize("argv, message", [
    (["--epochs", "0"], "argument --epochs: expected a positive integer, got 0"),
    (["--epochs", "ten"], "argument --epochs: expected a positive integer, got 'ten'"),
    (["--learning-rate", "-1"], "argument --learning-rate: expected a positive number"),
    (["--dataset", "mnist"], "argument --dataset: invalid choice: 'mnist'"),
])
def test_demo_bad_arguments(argv, message, capsys):
    code, _, err = run(["demo", *argv], capsys)
    assert code == 2 and message in err


def test_demo_out_must_be_a_folder(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    code, _, err = run(["demo", "--epochs", "1", "--out", tmp_path / "file"], capsys)
    assert code == 2 and "--out" in err and "is not a folder" in err


# ---- predict ------------------------------------------------------------------------------------
def test_predict_npy(model_file, x, tmp_path, capsys):
    path, model = model_file
    np.save(tmp_path / "x.npy", x)
    code, out, _ = run(["predict", path, tmp_path / "x.npy", "-o", tmp_path / "y.npy", "--batch-size", "3"], capsys)
    assert code == 0 and "7 sequences" in out and "(7, 3)" in out
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), model.predict(x, batch_size=3))
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), model.predict(x), atol=1e-6)


def test_predict_npz_named_array_and_outputs(model_file, x, tmp_path, capsys):
    path, model = model_file
    np.savez(tmp_path / "one.npz", sequences=x)
    assert run(["predict", path, tmp_path / "one.npz", "-o", tmp_path / "y.npz", "-q"], capsys)[:2] == (0, "")
    with np.load(tmp_path / "y.npz") as f:
        np.testing.assert_allclose(f["predictions"], model.predict(x), atol=1e-6)
    np.savez(tmp_path / "two.npz", a=x[:2], b=x)
    code, _, err = run(["predict", path, tmp_path / "two.npz", "-o", tmp_path / "y.npy"], capsys)
    assert code == 2 and "holds 2 arrays (a, b); choose one with --key NAME" in err
    assert run(["predict", path, tmp_path / "two.npz", "--key", "b", "-o", tmp_path / "y.csv"], capsys)[0] == 0
    np.testing.assert_allclose(np.loadtxt(tmp_path / "y.csv", delimiter=","), model.predict(x), atol=1e-6)
    code, _, err = run(["predict", path, tmp_path / "two.npz", "--key", "c", "-o", tmp_path / "y.npy"], capsys)
    assert code == 2 and "has no array 'c'; it holds: a, b" in err


def test_predict_csv(model_file, x, tmp_path, capsys):
    path, model = model_file
    rows = x.reshape(len(x), -1)  # time-major: step 0's two features, then step 1's, ...
    np.savetxt(tmp_path / "x.csv", rows, delimiter=",")
    assert run(["predict", path, tmp_path / "x.csv", "-o", tmp_path / "y.npy"], capsys)[0] == 0  # 5 steps from the model
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), model.predict(x), atol=1e-5)
    np.savetxt(tmp_path / "h.csv", rows, delimiter=",", header=",".join(f"v{i}" for i in range(10)), comments="")
    assert run(["predict", path, tmp_path / "h.csv", "--timesteps", "5", "-o", tmp_path / "y2.npy"], capsys)[0] == 0
    np.testing.assert_allclose(np.load(tmp_path / "y2.npy"), model.predict(x), atol=1e-5)
    code, _, err = run(["predict", path, tmp_path / "x.csv", "--timesteps", "3", "-o", tmp_path / "y.npy"], capsys)
    assert code == 2 and "rows have 10 values, not a multiple of 3 timesteps (--timesteps)" in err
    code, _, err = run(["predict", path, tmp_path / "x.csv", "--timesteps", "10", "-o", tmp_path / "y.npy"], capsys)
    assert code == 2 and "has shape (7, 10, 1); the model expects (batch, 5, 2)" in err
    np.savetxt(tmp_path / "odd.csv", np.zeros((2, 9)), delimiter=",")
    code, _, err = run(["predict", path, tmp_path / "odd.csv", "-o", tmp_path / "y.npy"], capsys)
    assert code == 2 and "rows have 9 values, not a multiple of 5 timesteps (the model's sequence length)" in err
    (tmp_path / "bad.csv").write_text("1,2,x\n3,4,5\n6,7\n")
    code, _, err = run(["predict", path, tmp_path / "bad.csv", "-o", tmp_path / "y.npy"], capsys)
    assert code == 2 and "cannot read" in err and "as CSV numbers" in err


@pytest.mark.filterwarnings("ignore:layer embedding")
def test_predict_embedding_model_reads_token_ids(tmp_path, capsys):
    model = fg.Sequential([Embedding(10, 4, input_shape=(6,)), GRU(3)])
    model.save(tmp_path / "e.keras")
    tokens = np.random.default_rng(1).integers(0, 10, (4, 6))
    np.savetxt(tmp_path / "t.csv", tokens, delimiter=",", fmt="%d")
    assert run(["predict", tmp_path / "e.keras", tmp_path / "t.csv", "-o", tmp_path / "y.npy"], capsys)[0] == 0
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), model.predict(tokens), atol=1e-6)


@pytest.mark.parametrize("shape, message", [
    ((7, 5, 3), "has shape (7, 5, 3); the model expects (batch, 5, 2) (2 features per step, found 3)"),
    ((7, 5), "has shape (7, 5); the model expects (batch, 5, 2)"),
    ((2, 7, 5, 2), "has shape (2, 7, 5, 2); the model expects (batch, 5, 2)"),
    ((0, 5, 2), "holds no sequences (shape (0, 5, 2))"),
])
def test_predict_shape_mismatch(model_file, tmp_path, capsys, shape, message):
    np.save(tmp_path / "x.npy", np.zeros(shape, np.float32))
    code, _, err = run(["predict", model_file[0], tmp_path / "x.npy", "-o", tmp_path / "y.npy"], capsys)
    assert code == 2 and message in err and not (tmp_path / "y.npy").exists()


def test_predict_univariate_hint(tmp_path, capsys):
    fg.Sequential([GRU(2, input_shape=(4, 1))]).save(tmp_path / "u.keras")
    np.save(tmp_path / "x.npy", np.zeros((3, 4), np.float32))
    code, _, err = run(["predict", tmp_path / "u.keras", tmp_path / "x.npy", "-o", tmp_path / "y.npy"], capsys)
    assert code == 2 and "add a trailing axis of length 1" in err


def test_predict_bad_files(model_file, x, tmp_path, capsys):
    path = model_file[0]
    np.save(tmp_path / "x.npy", x)
    cases = {
        "missing model": ([tmp_path / "nope.keras", tmp_path / "x.npy"], "model file"),
        "missing input": ([path, tmp_path / "nope.npy"], "does not exist"),
        "input folder": ([path, tmp_path], "is not a file"),
        "input type": ([path, tmp_path / "x.json"], "unsupported input type .json"),
        "texts for numbers": ([path, tmp_path / "x.txt"], "this model's input is not strings"),
        "model not a model": ([tmp_path / "x.npy", tmp_path / "x.npy"], "ModelFileError"),
    }
    (tmp_path / "x.txt").write_text("1,2")
    (tmp_path / "x.json").write_text("[1, 2]")
    for name, (argv, message) in cases.items():
        code, _, err = run(["predict", *argv, "-o", tmp_path / "y.npy"], capsys)
        assert code == 2 and message in err, name
    (tmp_path / "broken.npy").write_bytes(b"\x93NUMPY garbage")
    code, _, err = run(["predict", path, tmp_path / "broken.npy", "-o", tmp_path / "y.npy"], capsys)
    assert code == 2 and "cannot read" in err and "as a .npy array" in err
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 not a zip")
    code, _, err = run(["predict", path, tmp_path / "broken.npz", "-o", tmp_path / "y.npy"], capsys)
    assert code == 2 and "as a .npz archive" in err
    np.save(tmp_path / "obj.npy", np.array(["a", "b"]))
    code, _, err = run(["predict", path, tmp_path / "obj.npy", "-o", tmp_path / "y.npy"], capsys)
    assert code == 2 and "expected a numeric array, found dtype <U1" in err
    code, _, err = run(["predict", path, tmp_path / "x.npy", "-o", tmp_path / "y.json"], capsys)
    assert code == 2 and "unsupported output type .json" in err
    code, _, err = run(["predict", path, tmp_path / "x.npy", "-o", tmp_path / "no" / "y.npy"], capsys)
    assert code == 2 and "output folder" in err and "does not exist" in err


@pytest.mark.parametrize("extra, message", [
    (["--batch-size", "0"], "argument --batch-size: expected a positive integer, got 0"),
    (["--timesteps", "5"], "--timesteps only applies to .csv inputs"),
    (["--key", "a"], "--key only applies to .npz inputs"),
])
def test_predict_bad_arguments(model_file, x, tmp_path, capsys, extra, message):
    np.save(tmp_path / "x.npy", x)
    code, _, err = run(["predict", model_file[0], tmp_path / "x.npy", "-o", tmp_path / "y.npy", *extra], capsys)
    assert code == 2 and message in err


def test_predict_requires_output(model_file, capsys):
    code, _, err = run(["predict", model_file[0], "x.npy"], capsys)
    assert code == 2 and "the following arguments are required: -o/--output" in err


# ---- info and bench -----------------------------------------------------------------------------
def test_info(model_file, tmp_path, capsys):
    code, out, _ = run(["info", model_file[0]], capsys)
    assert code == 0 and "(GRU)" in out and "Total params:" in out
    code, _, err = run(["info", tmp_path / "missing.keras"], capsys)
    assert code == 2 and "missing.keras" in err
    (tmp_path / "text.h5").write_text("not hdf5")
    code, _, err = run(["info", tmp_path / "text.h5"], capsys)
    assert code == 2 and "ModelFileError" in err


def test_bench_small_and_bad_arguments(capsys):
    code, out, _ = run(["bench", "--shapes", "S1", "--threads", "1", "--repeats", "2", "--json"], capsys)
    assert code == 0 and '"shape": "S1"' in out
    # what the timings depend on is recorded with them: the CPU's vector extensions, fastgru's tile
    # layout, OpenBLAS's kernel set and OPENBLAS_CORETYPE
    import json

    from fastgru._kernels.simd import VECTOR_BYTES
    env = json.loads(out)["environment"]
    assert env["fastgru_vector_bytes"] == VECTOR_BYTES
    for key in ("cpu", "cpu_simd", "openblas_core", "OPENBLAS_CORETYPE"):
        assert env[key], key
    if VECTOR_BYTES == 64:
        assert "avx512f" in env["cpu_simd"].split()
    code, _, err = run(["bench", "--shapes", "S9"], capsys)
    assert code == 2 and "unknown shape(s) S9" in err
    code, _, err = run(["bench", "--threads", "two"], capsys)
    assert code == 2 and "--threads expects comma-separated integers" in err


def test_predict_from_a_savedmodel_directory(tmp_path, capsys):
    """``fastgru predict`` takes a Keras 2 SavedModel directory as it takes a model file."""
    folder = Path(__file__).parent / "fixtures" / "saved_model"
    expected = np.load(folder / "sm_gru.npz")
    np.save(tmp_path / "x.npy", expected["x"])
    code, out, _ = run(["predict", folder / "sm_gru", tmp_path / "x.npy", "-o", tmp_path / "y.npy"], capsys)
    assert code == 0, out
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected["y"], rtol=1e-5, atol=2e-6)


def test_predict_a_model_of_several_inputs_from_named_arrays(tmp_path, capsys):
    english, spanish = fg.Input((None,), dtype="int32", name="english"), fg.Input((None,), dtype="int32", name="spanish")
    state = GRU(4)(Embedding(30, 4)(english))
    model = fg.Model([english, spanish], GRU(4, return_sequences=True)(Embedding(30, 4)(spanish), initial_state=state))
    model.save(tmp_path / "two.keras")
    rng = np.random.default_rng(0)
    inputs = {"english": rng.integers(1, 30, (4, 8)), "spanish": rng.integers(1, 30, (4, 7))}
    np.savez(tmp_path / "in.npz", **inputs)
    code, out, _ = run(["predict", tmp_path / "two.keras", tmp_path / "in.npz", "-o", tmp_path / "y.npy"], capsys)
    assert code == 0 and "4 sequences" in out
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), model.predict(inputs, verbose=0), rtol=1e-6)
    np.savez(tmp_path / "half.npz", english=inputs["english"])
    code, _, err = run(["predict", tmp_path / "two.keras", tmp_path / "half.npz", "-o", tmp_path / "y.npy"], capsys)
    assert code == 2 and "missing: spanish" in err
    code, _, err = run(["predict", tmp_path / "two.keras", tmp_path / "in.npz", "--key", "english", "-o",
                        tmp_path / "y.npy"], capsys)
    assert code == 2 and "takes 2 inputs (english, spanish)" in err
