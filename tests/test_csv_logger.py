"""``fg.callbacks.CSVLogger``: the file Keras's CSVLogger writes (committed inline, and byte for byte against
live Keras from the same logs), append mode, separators, and the file of a ``fit``."""

from __future__ import annotations

import csv

import numpy as np
import pytest

import fastgru as fg

CSVLogger = fg.callbacks.CSVLogger
_LOGS = [{"loss": 0.6931471824645996, "acc": 0.5, "lst": [1, 2.5], "arr": np.array([0.25, 3]), "s": "x,y",
          "z": np.float32(0.1), "zd": np.array(2.0)},
         {"loss": 0.5, "acc": 0.75}]


def _run(logger, logs_per_epoch, first_epoch=0):
    logger.on_train_begin()
    for epoch, logs in enumerate(logs_per_epoch, start=first_epoch):
        logger.on_epoch_end(epoch, logs)
    logger.on_train_end()


def _read(path) -> str:
    with open(path, newline="") as f:
        return f.read()


def test_file_as_keras_writes_it(tmp_path):
    """Header: epoch, the first epoch's keys sorted, their val_ twins (none were logged); missing -> NA;
    iterables as "[a, b]" (csv-quoted); 0-d arrays and numbers as str; lines end in \\r\\n (csv.excel)."""
    path = tmp_path / "log.csv"
    _run(CSVLogger(path), _LOGS)
    assert _read(path) == (
        "epoch,acc,arr,loss,lst,s,z,zd,val_acc,val_arr,val_loss,val_lst,val_s,val_z,val_zd\r\n"
        '0,0.5,"""[0.25, 3.0]""",0.6931471824645996,"""[1, 2.5]""","x,y",0.1,2.0,NA,NA,NA,NA,NA,NA,NA\r\n'
        "1,0.75,NA,0.5,NA,NA,NA,NA,NA,NA,NA,NA,NA,NA,NA\r\n")


def test_append_separator_and_overwrite(tmp_path):
    path = tmp_path / "log.csv"
    _run(CSVLogger(str(path)), [{"loss": 1.0, "val_loss": 2.0}])
    _run(CSVLogger(path, separator=";", append=True), [{"loss": 0.5, "val_loss": 1.5}], first_epoch=1)
    assert _read(path) == "epoch,loss,val_loss\r\n0,1.0,2.0\r\n1;0.5;1.5\r\n"  # no second header
    _run(CSVLogger(path, separator="\t"), [{"loss": 0.25, "val_loss": 0.125}])
    assert _read(path) == "epoch\tloss\tval_loss\r\n0\t0.25\t0.125\r\n"
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    _run(CSVLogger(empty, append=True), [{"loss": 3.0}])  # an empty file gets the header
    assert _read(empty) == "epoch,loss,val_loss\r\n0,3.0,NA\r\n"
    fresh = tmp_path / "fresh.csv"
    _run(CSVLogger(fresh, append=True), [{}])  # no logs: the epoch column only
    assert _read(fresh) == "epoch\r\n0\r\n"


@pytest.mark.parametrize("kwargs,match", [({"separator": ";;"}, "separator"), ({"separator": 1}, "separator"),
                                          ({"filename": 3}, "filename")])
def test_bad_arguments_are_refused(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        CSVLogger(**{"filename": tmp_path / "x.csv", **kwargs})


def test_fit_writes_its_history(tmp_path, rng):
    x = rng.standard_normal((24, 5, 3)).astype(np.float32)
    y = (rng.random((24, 1)) > 0.5).astype(np.float32)
    model = fg.Sequential([fg.layers.Input((5, 3)), fg.layers.GRU(4), fg.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy", fg.metrics.AUC(name="auc")])
    path = tmp_path / "fit.csv"
    history = model.fit(x, y, epochs=3, batch_size=8, validation_split=0.25, verbose=0,
                        callbacks=[CSVLogger(path)]).history
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["epoch", "accuracy", "auc", "loss", "val_accuracy", "val_auc", "val_loss"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "2"]
    for j, key in enumerate(rows[0][1:], start=1):
        assert [float(r[j]) for r in rows[1:]] == history[key]
        assert [r[j] for r in rows[1:]] == [str(v) for v in history[key]]


# ------------------------------------------------------------------ live Keras -------------
def test_same_file_as_keras_from_the_same_logs(keras, tmp_path):
    cases = [({}, _LOGS), ({"separator": ";"}, [{"val_loss": 0.1, "loss": 0.2, "auc": 0.9}, {"loss": 0.3}]),
             ({}, [{"b": 1, "a": np.float32(0.3)}]), ({}, [{}])]
    for i, (kwargs, logs) in enumerate(cases):
        ours, theirs = tmp_path / f"ours{i}.csv", tmp_path / f"keras{i}.csv"
        _run(CSVLogger(ours, **kwargs), logs)
        _run(keras.callbacks.CSVLogger(str(theirs), **kwargs), logs)
        assert ours.read_bytes() == theirs.read_bytes(), kwargs
        _run(CSVLogger(ours, append=True, **kwargs), logs, first_epoch=5)
        _run(keras.callbacks.CSVLogger(str(theirs), append=True, **kwargs), logs, first_epoch=5)
        assert ours.read_bytes() == theirs.read_bytes(), kwargs


def test_fit_file_matches_keras_fit_file(keras, tmp_path, rng):
    x = rng.standard_normal((30, 5, 3)).astype(np.float32)
    y = (x.sum(axis=(1, 2)) > 0).astype(np.float32)[:, None]
    km = keras.Sequential([keras.Input((5, 3)), keras.layers.GRU(4), keras.layers.Dense(1, activation="sigmoid")])
    ours = fg.from_keras(km)
    km.compile(optimizer="adam", loss="binary_crossentropy", metrics=[keras.metrics.AUC(name="auc")])
    ours.compile(optimizer="adam", loss="binary_crossentropy", metrics=[fg.metrics.AUC(name="auc")])
    kpath, opath = tmp_path / "keras.csv", tmp_path / "ours.csv"
    km.fit(x, y, epochs=2, batch_size=8, shuffle=False, validation_split=0.2, verbose=0,
           callbacks=[keras.callbacks.CSVLogger(str(kpath))])
    ours.fit(x, y, epochs=2, batch_size=8, shuffle=False, validation_split=0.2, verbose=0,
             callbacks=[CSVLogger(opath)])
    with open(kpath, newline="") as f:
        want = list(csv.reader(f))
    with open(opath, newline="") as f:
        got = list(csv.reader(f))
    assert got[0] == want[0] == ["epoch", "auc", "loss", "val_auc", "val_loss"]
    assert [r[0] for r in got] == [r[0] for r in want]
    np.testing.assert_allclose(np.array([r[1:] for r in got[1:]], float),
                               np.array([r[1:] for r in want[1:]], float), rtol=1e-5)
