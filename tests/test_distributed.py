"""fastgru.distributed on a real dask.distributed LocalCluster (2 worker processes, 1 thread each).

One cluster for the module. Skips cleanly when dask/distributed are not installed (the ``test``
extra installs them, so CI runs these).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastgru as fg
import fastgru.distributed  # noqa: F401  (imports no dask)
from fastgru.layers import GRU, Dense, Embedding, Input

ROOT = Path(__file__).resolve().parents[1]


def test_importing_fastgru_does_not_import_dask():
    code = ("import sys, fastgru, fastgru.distributed; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')); "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300,
                   env=dict(os.environ, PYTHONPATH=str(ROOT)))


@pytest.fixture(scope="module")
def da():
    pytest.importorskip("distributed")
    return pytest.importorskip("dask.array")


@pytest.fixture(scope="module")
def client(da):
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                           worker_dashboard_address=None)
    client = Client(cluster)
    yield client
    client.close()
    cluster.close()


def _model(return_sequences=False, out=1, activation="sigmoid"):
    fg.set_random_seed(3)
    return fg.Sequential([
        Input(shape=(10, 50)),
        GRU(24, return_sequences=True),
        GRU(16, return_sequences=return_sequences),
        Dense(out, activation=activation),
    ])


def _x(n=600, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal((n, 10, 50)).astype(dtype)


# ---- predict --------------------------------------------------------------------------------


@pytest.mark.parametrize("chunks", [150, (100, 250, 130, 120)])
def test_predict_equals_single_process(client, da, chunks):
    model, x = _model(), _x()
    xd = da.from_array(x, chunks=(chunks, -1, -1))
    out = fg.distributed.predict(model, xd, client=client)
    assert isinstance(out, da.Array)
    assert out.shape == (600, 1) and out.dtype == np.float32 and out.chunks[0] == xd.chunks[0]
    result = out.compute()
    # bit for bit what this process computes on the same blocks; within float32 rounding of one
    # whole-array call (NumPy's BLAS rounds the Dense product differently for other row counts)
    blocks = np.split(x, np.cumsum(xd.chunks[0])[:-1])
    with_threads = fg.get_num_threads()
    fg.set_num_threads(1)
    try:
        expected = np.concatenate([model.predict(b) for b in blocks])
    finally:
        fg.set_num_threads(with_threads)
    assert np.array_equal(result, expected)
    np.testing.assert_allclose(result, model.predict(x), rtol=0, atol=1e-6)


def test_predict_return_sequences_and_batch_size(client, da):
    model, x = _model(return_sequences=True, out=3, activation="softmax"), _x(300)
    out = fg.distributed.predict(model, da.from_array(x, chunks=(100, -1, -1)), batch_size=40, client=client)
    assert out.shape == (300, 10, 3) and out.chunks == ((100, 100, 100), (10,), (3,))
    np.testing.assert_allclose(out.compute(), model.predict(x), rtol=0, atol=1e-6)


def test_predict_float64_and_token_inputs(client, da):
    model, x = _model(), _x(200, dtype=np.float64)
    out = fg.distributed.predict(model, da.from_array(x, chunks=(64, -1, -1)), client=client)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out.compute(), model.predict(x), rtol=1e-12, atol=1e-12)

    fg.set_random_seed(4)
    emb = fg.Sequential([Embedding(40, 6, mask_zero=True), GRU(5)])
    tokens = np.random.default_rng(1).integers(0, 40, (90, 12))
    tokens[:, 9:] = 0
    out = fg.distributed.predict(emb, da.from_array(tokens, chunks=(30, -1)), client=client)  # builds emb here
    assert emb.built and out.shape == (90, 5)
    np.testing.assert_allclose(out.compute(), emb.predict(tokens), rtol=0, atol=1e-6)


def test_each_call_has_its_own_keys(client, da):
    """Two models (or changed weights) on the same blocks never share a task key or a cached result."""
    import dask

    x = _x(300, seed=8)
    xd = da.from_array(x, chunks=(100, -1, -1))
    model = _model()
    first = fg.distributed.predict(model, xd, client=client)
    model.set_weights([w * 0.5 for w in model.get_weights()])
    second = fg.distributed.predict(model, xd, client=client)
    assert first.name != second.name
    a, b = dask.compute(first, second)
    assert not np.allclose(a, b)
    np.testing.assert_allclose(b, model.predict(x), rtol=0, atol=1e-6)


def test_model_travels_once_per_worker_and_kernels_load_once(client, da):
    """8 blocks on 2 workers: each worker unpickles the model once, and each kernel signature is
    loaded from Numba's cache (or compiled) at most once per worker process, whatever the task count."""

    def count_rebuilds():
        import fastgru._pickle as p

        if not hasattr(p, "_test_original"):
            p._test_original = p.rebuild_model

            def counting(*args):
                p._test_rebuilds += 1
                return p._test_original(*args)

            p.rebuild_model = counting
        p._test_rebuilds = 0

    def rebuilds():
        import fastgru._pickle as p

        return p._test_rebuilds

    def kernel_loads():
        from fastgru._kernels import gru

        counts = []
        for kernel in (gru.gru_forward_slice,):  # the kernel predict calls (it projects the inputs too)
            stats = kernel.stats
            counts += list((stats.cache_hits + stats.cache_misses).values())
        return counts

    client.run(count_rebuilds)
    model, x = _model(), _x(800, seed=5)
    xd = da.from_array(x, chunks=(100, -1, -1))
    for _ in range(2):
        fg.distributed.predict(model, xd, client=client).compute()
    assert sorted(client.run(rebuilds).values()) == [2, 2]  # one per call per worker, not per task
    for counts in client.run(kernel_loads).values():
        assert counts and max(counts) == 1


def test_predict_refuses_bad_inputs(da):
    model = _model()
    with pytest.raises(TypeError, match="dask.array"):
        fg.distributed.predict(model, _x(10))
    with pytest.raises(ValueError, match="rank 3"):
        fg.distributed.predict(model, da.zeros((10, 50), chunks=5))
    with pytest.raises(ValueError, match=r"chunked along axis 1 \(time"):
        fg.distributed.predict(model, da.zeros((10, 10, 50), chunks=(5, 5, 50)))
    with pytest.raises(ValueError, match="axis 2 = 50"):
        fg.distributed.predict(model, da.zeros((10, 10, 49), chunks=(5, 10, 49)))
    stateful = fg.Sequential([Input(batch_shape=(5, 10, 50)), GRU(4, stateful=True)])
    with pytest.raises(ValueError, match="stateful"):
        fg.distributed.predict(stateful, da.zeros((10, 10, 50), chunks=(5, 10, 50)))
    two = fg.Sequential([Input(shape=(10, 50)), GRU(4, return_state=True)])
    with pytest.raises(ValueError, match="return_state"):
        fg.distributed.predict(two, da.zeros((10, 10, 50), chunks=(5, 10, 50)))


# ---- evaluate -------------------------------------------------------------------------------


def _compiled_model():
    model = _model()
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy", "mse"])
    return model


def test_evaluate_equals_single_process(client, da):
    model, x = _compiled_model(), _x(700, seed=2)
    y = (np.random.default_rng(3).random((700, 1)) > 0.5).astype(np.float32)
    sw = np.random.default_rng(4).random(700).astype(np.float32)
    xd = da.from_array(x, chunks=(150, -1, -1))  # boundaries moved to multiples of batch_size
    for kwargs in ({}, {"batch_size": 64, "sample_weight": sw}):
        expected = model.evaluate(x, y, verbose=0, **kwargs)
        sw_d = kwargs.get("sample_weight")
        got = fg.distributed.evaluate(
            model, xd, da.from_array(y, chunks=100), client=client, batch_size=kwargs.get("batch_size"),
            sample_weight=None if sw_d is None else da.from_array(sw_d, chunks=350),
        )
        np.testing.assert_allclose(got, expected, rtol=2e-6)
        assert got[1] == expected[1]  # accuracy sums are exact in float32
    logs = fg.distributed.evaluate(model, xd, y, client=client, return_dict=True)
    assert list(logs) == ["accuracy", "loss", "mse"]  # (sorted, as Keras's evaluate dict)


def test_evaluate_with_weighted_metrics(client, da):
    """compile(weighted_metrics=...): the distributed evaluation logs and lists what the model's own does."""
    model, x = _model(), _x(300, seed=5)
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["mse"], weighted_metrics=["mse", "accuracy"])
    y = (np.random.default_rng(6).random((300, 1)) > 0.5).astype(np.float32)
    sw = np.random.default_rng(7).random(300).astype(np.float32)
    args = (da.from_array(x, chunks=(100, -1, -1)), da.from_array(y, chunks=100))
    expected = model.evaluate(x, y, batch_size=50, sample_weight=sw, verbose=0)
    got = fg.distributed.evaluate(model, *args, client=client, batch_size=50, sample_weight=da.from_array(sw, 100))
    assert len(got) == len(expected) == 5  # (loss, mse, mse, accuracy, weighted_mse: Keras's list)
    np.testing.assert_allclose(got, expected, rtol=2e-6)
    logs = fg.distributed.evaluate(model, *args, client=client, batch_size=50, sample_weight=da.from_array(sw, 100),
                                   return_dict=True)
    assert list(logs) == ["accuracy", "loss", "mse", "weighted_mse"]


def test_evaluate_masked_sequence_outputs(client, da):
    """Per-step losses under an Embedding mask (the loss is averaged over each batch's valid steps)."""
    fg.set_random_seed(6)
    model = fg.Sequential([Embedding(25, 6, mask_zero=True), GRU(8, return_sequences=True),
                           Dense(4, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(2)
    tokens = rng.integers(1, 25, (230, 9))
    for i, length in enumerate(rng.integers(2, 10, 230)):
        tokens[i, length:] = 0
    labels = rng.integers(0, 4, (230, 9))
    model.build((None, 9))
    expected = model.evaluate(tokens, labels, batch_size=16, verbose=0)
    got = fg.distributed.evaluate(model, da.from_array(tokens, chunks=(70, -1)), labels, batch_size=16,
                                  client=client)
    np.testing.assert_allclose(got, expected, rtol=2e-6)


def test_evaluate_one_block_is_bit_identical(client, da):
    model, x = _compiled_model(), _x(200, seed=6)
    y = (np.random.default_rng(7).random(200) > 0.5).astype(np.float32)
    with_threads = fg.get_num_threads()
    fg.set_num_threads(1)
    try:
        expected = model.evaluate(x, y, verbose=0)
    finally:
        fg.set_num_threads(with_threads)
    assert fg.distributed.evaluate(model, da.from_array(x, chunks=(200, -1, -1)), y, client=client) == expected


def test_evaluate_refuses_bad_inputs(da):
    xd = da.zeros((10, 10, 50), chunks=(5, 10, 50))
    with pytest.raises(RuntimeError, match="compile"):
        fg.distributed.evaluate(_model(), xd, np.zeros(10))
    with pytest.raises(ValueError, match="10 entries"):
        fg.distributed.evaluate(_compiled_model(), xd, np.zeros(9))
    with pytest.raises(ValueError, match="num_threads"):
        fg.distributed.evaluate(_compiled_model(), xd, np.zeros(10), num_threads=0)


# ---- a worker dies mid-job (keep last: the cluster restarts a worker) ------------------------


def _die_once(block, flag, block_info=None):
    """Kill this worker process the first time block 3 is computed (the flag file marks it done)."""
    if block_info[0]["chunk-location"][0] == 3 and not os.path.exists(flag):
        open(flag, "w").close()
        os._exit(1)
    return block


def test_killed_worker_is_retried_and_result_complete(client, da, tmp_path):
    model, x = _model(), _x(800, seed=9)
    flag = str(tmp_path / "died")
    xd = da.from_array(x, chunks=(100, -1, -1)).map_blocks(_die_once, flag, dtype=x.dtype)
    # (bounded: a cluster that never reschedules the lost block fails the test instead of stalling the suite)
    result = client.compute(fg.distributed.predict(model, xd, client=client)).result(timeout=240)
    assert os.path.exists(flag)  # a worker did die
    blocks = np.split(x, 8)
    with_threads = fg.get_num_threads()
    fg.set_num_threads(1)
    try:
        expected = np.concatenate([model.predict(b) for b in blocks])
    finally:
        fg.set_num_threads(with_threads)
    assert np.array_equal(result, expected)
    client.wait_for_workers(2, timeout=60)
