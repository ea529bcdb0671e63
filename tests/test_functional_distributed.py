"""fastgru.distributed.predict/evaluate with Functional models (several dask arrays, a list or a dict;
several outputs) on a real LocalCluster; results equal the model's own predict/evaluate."""

from __future__ import annotations

import functional_cases as fc
import numpy as np
import pytest

import fastgru as fg
import fastgru.distributed as fd


@pytest.fixture(scope="module")
def client():
    pytest.importorskip("distributed")
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                           worker_dashboard_address=None)
    client = Client(cluster)
    yield client
    client.close()
    cluster.close()


def _listed(a):
    return list(a.values()) if isinstance(a, dict) else a if isinstance(a, list) else [a]


@pytest.mark.parametrize("name,loss,metrics,weighted", [
    ("two_inputs", "binary_crossentropy", ["accuracy"], None),
    ("two_outputs", {"cls": "binary_crossentropy", "reg": "mse"}, {"cls": ["accuracy"], "reg": ["mae"]}, None),
    ("two_outputs", {"cls": "binary_crossentropy", "reg": "mse"}, {"cls": ["accuracy"]},
     {"cls": ["accuracy"], "reg": ["mae"]}),
    ("seq2seq_gru", "categorical_crossentropy", ["categorical_accuracy"], None),
])
def test_multi_input_and_output_models_on_dask(client, name, loss, metrics, weighted):
    import dask.array as da

    model = fc.make(fg, name)
    xs, ys = fc.data(name, n=23)
    dxs = [da.from_array(x, chunks=(5,) + x.shape[1:]) for x in xs]
    dxs[-1] = dxs[-1].rechunk({0: 7})  # inputs chunked differently are aligned on the first one's chunks
    x_arg = dict(zip(model.input_names, dxs)) if len(dxs) > 1 else dxs[0]
    got = _listed(fd.predict(model, x_arg, batch_size=4, client=client))
    expected = _listed(model.predict(xs if len(xs) > 1 else xs[0]))
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g.compute(), e, rtol=1e-6, atol=1e-7)
    model.compile("adam", loss, metrics=metrics, weighted_metrics=weighted)
    y = ys if len(ys) > 1 else ys[0]
    logs = fd.evaluate(model, x_arg, y, batch_size=4, client=client, return_dict=True)
    local = model.evaluate(xs if len(xs) > 1 else xs[0], y, batch_size=4, verbose=0, return_dict=True)
    assert list(logs) == list(local)
    for key in local:
        np.testing.assert_allclose(logs[key], local[key], rtol=1e-5)
    assert fd.evaluate(model, x_arg, y, batch_size=4, client=client) == pytest.approx(
        model.evaluate(xs if len(xs) > 1 else xs[0], y, batch_size=4, verbose=0), rel=1e-5)


def test_bad_multi_inputs_are_refused(client):
    import dask.array as da

    model = fc.make(fg, "two_inputs")
    xs, _ = fc.data("two_inputs", n=6)
    with pytest.raises(ValueError, match=r"misses \['static'\]"):
        fd.predict(model, {"seq": da.from_array(xs[0])}, client=client)
    with pytest.raises(TypeError, match="input 'static' must be a dask.array.Array"):
        fd.predict(model, [da.from_array(xs[0]), xs[1]], client=client)
    with pytest.raises(ValueError, match="same number of rows"):
        fd.predict(model, [da.from_array(xs[0]), da.from_array(xs[1][:4])], client=client)
