"""Training robustness: NaN/inf in the training data is refused before any weight changes (naming the sample
and its batch), TerminateOnNaN stops training on a NaN/inf loss as Keras's does, and training is
deterministic: the same seed gives bit-identical weights across processes on 1 thread, and weights that
agree within float32 tolerance across thread counts."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastgru as fg
from fastgru.layers import GRU, Dense, Input


def _model(seed=0):
    fg.set_random_seed(seed)
    model = fg.Sequential([Input(shape=(5, 3)), GRU(8), Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model


def _data(n=40):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 5, 3)).astype(np.float32), rng.integers(0, 2, (n, 1)).astype(np.float32)


# ---- NaN in the data -------------------------------------------------------------------------
@pytest.mark.parametrize("where,bad", [("x", np.nan), ("x", np.inf), ("y", np.nan), ("sample_weight", -np.inf)])
def test_fit_refuses_non_finite_data_before_touching_the_weights(where, bad):
    model = _model()
    x, y = _data()
    sw = np.ones(len(x), np.float32)
    {"x": x, "y": y, "sample_weight": sw}[where][37] = bad
    before = model.get_weights()
    with pytest.raises(ValueError, match=rf"fit: {where} holds NaN or infinite values in sample 37 \(batch 2 "
                                         r"with batch_size=16.*1 sample\(s\) affected: 37"):
        model.fit(x, y, batch_size=16, epochs=1, verbose=0, sample_weight=sw)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_fit_error_lists_several_bad_samples_and_train_on_batch_checks_too():
    model = _model()
    x, y = _data()
    x[[3, 4, 30], 1, 2] = np.nan
    with pytest.raises(ValueError, match=r"sample 3 \(batch 0 .*3 sample\(s\) affected: 3, 4, 30"):
        model.fit(x, y, batch_size=32, verbose=0)
    with pytest.raises(ValueError, match=r"train_on_batch: x holds NaN or infinite values in sample 3"):
        model.train_on_batch(x, y)
    model.fit(np.nan_to_num(x), y, batch_size=32, verbose=0)  # clean data trains


def test_fit_checks_the_training_part_after_validation_split():
    model = _model()
    x, y = _data()
    x[-1] = np.nan  # in the validation part: it only makes val_loss NaN, the weights stay finite
    hist = model.fit(x, y, validation_split=0.1, batch_size=8, verbose=0)
    assert all(np.isfinite(w).all() for w in model.get_weights())
    assert np.isnan(hist.history["val_loss"][0])


# ---- TerminateOnNaN --------------------------------------------------------------------------
class _Diverge(fg.callbacks.Callback):
    """Make the weights NaN after batch ``at`` (what divergence does)."""

    def __init__(self, at):
        super().__init__()
        self.at = at

    def on_train_batch_end(self, batch, logs=None):
        if batch == self.at:
            for w in self.model.weights:
                w.fill(np.nan)


def test_terminate_on_nan_stops_training(capsys):
    model = _model()
    x, y = _data()
    seen = []

    class Batches(fg.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append((batch, logs["loss"]))

    hist = model.fit(x, y, batch_size=8, epochs=3, verbose=0,
                     callbacks=[_Diverge(1), fg.callbacks.TerminateOnNaN(), Batches()])
    assert [b for b, _ in seen] == [0, 1, 2]  # batch 2's loss is NaN: training stops there
    assert np.isnan(seen[-1][1])
    assert "Batch 2: Invalid loss, terminating training" in capsys.readouterr().out
    assert len(hist.history["loss"]) == 1


def test_terminate_on_nan_raise_error():
    model = _model()
    x, y = _data()
    with pytest.raises(RuntimeError, match="NaN or Inf loss encountered at batch 2"):
        model.fit(x, y, batch_size=8, epochs=3, verbose=0,
                  callbacks=[_Diverge(1), fg.callbacks.TerminateOnNaN(raise_error=True)])


def test_terminate_on_nan_matches_keras_callback_behaviour(keras):
    """Same hook, same condition, same message as keras.callbacks.TerminateOnNaN."""
    class FakeModel:
        stop_training = False

    for cb in (keras.callbacks.TerminateOnNaN(), fg.callbacks.TerminateOnNaN()):
        model = FakeModel()
        cb._model = model  # both keep the model there (set_model of Keras's wants a Keras model)
        cb.on_batch_end(0, {"loss": 1.0})
        assert not model.stop_training
        cb.on_batch_end(1, {"loss": float("inf")})
        assert model.stop_training


# ---- determinism -----------------------------------------------------------------------------
TRAIN = textwrap.dedent("""
    import hashlib, sys
    import numpy as np
    import fastgru as fg
    from fastgru.layers import GRU, Dense, Dropout, Input

    fg.set_num_threads(int(sys.argv[1]))
    fg.set_random_seed(123)
    model = fg.Sequential([Input(shape=(10, 6)), GRU(16, return_sequences=True, recurrent_dropout=0.1),
                           GRU(12, dropout=0.2), Dropout(0.3), Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(7)
    x = rng.standard_normal((96, 10, 6)).astype(np.float32)
    y = rng.integers(0, 3, 96)
    model.fit(x, y, epochs=3, batch_size=32, verbose=0, validation_split=0.25)
    digest = hashlib.sha256(b"".join(w.tobytes() for w in model.get_weights())).hexdigest()
    print(digest)
    np.savez(sys.argv[2], *model.get_weights())
""")


def _train_in_child(tmp_path, threads, tag, env_extra=None):
    out = tmp_path / f"{tag}.npz"
    env = dict(os.environ, **(env_extra or {}))
    res = subprocess.run([sys.executable, "-c", TRAIN, str(threads), str(out)], capture_output=True, text=True,
                         env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    digest = res.stdout.split()[-1]
    with np.load(out) as f:
        weights = [f[k] for k in f.files]
    return digest, weights


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Three training runs in fresh processes with nothing pinned (the step-product path is a fixed rule,
    never a timing): 1 thread twice, 2 threads once."""
    tmp = tmp_path_factory.mktemp("determinism")
    return {tag: _train_in_child(tmp, threads, tag) for tag, threads in (("a", 1), ("b", 1), ("two", 2))}


def test_same_seed_bit_identical_weights_across_processes_on_one_thread(trained):
    assert trained["a"][0] == trained["b"][0], "the same seed gave different weights in two processes"


def test_thread_counts_agree_within_float32_tolerance(trained):
    for w1, w2 in zip(trained["a"][1], trained["two"][1]):
        np.testing.assert_allclose(w1, w2, rtol=1e-4, atol=1e-5)


def test_same_seed_bit_identical_in_process():
    x, y = _data()
    digests = []
    for _ in range(2):
        model = _model(seed=5)
        model.fit(x, y, batch_size=8, epochs=2, verbose=0)
        digests.append(hashlib.sha256(b"".join(w.tobytes() for w in model.get_weights())).hexdigest())
    assert digests[0] == digests[1]
