"""The bundled UCR/UEA data sets: shapes, labels, padding, and the .ts conversion script."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import fastgru as fg
from fastgru import datasets

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("make_datasets", ROOT / "scripts" / "make_datasets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_italy_power_demand():
    (x_train, y_train), (x_test, y_test) = fg.datasets.load("italy_power_demand")
    assert x_train.shape == (67, 24, 1) and x_test.shape == (1029, 24, 1)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64
    assert np.bincount(y_train).tolist() == [34, 33] and np.bincount(y_test).tolist() == [513, 516]
    # z-normalised series, as in the archive
    np.testing.assert_allclose(x_train[..., 0].mean(axis=1), 0, atol=1e-3)
    np.testing.assert_allclose(x_train[0, :3, 0], [-0.71051757, -1.1833204, -1.3724416], rtol=1e-7)
    info = datasets.info("ItalyPowerDemand")
    assert info.classes == ("1", "2") and info.n_classes == 2 and info.n_features == 1
    assert set(info.lengths_train) == {24} and "Keogh" in info.citation


def test_japanese_vowels_padding_and_lengths():
    (x_train, y_train), (x_test, y_test) = datasets.load("japanese-vowels")
    assert x_train.shape == (270, 29, 12) and x_test.shape == (370, 29, 12)
    assert np.bincount(y_train).tolist() == [30] * 9 and sorted(set(y_test)) == list(range(9))
    info = datasets.info("japanese_vowels")
    assert info.classes == tuple("123456789") and "Kudo" in info.citation
    assert info.lengths_train.min() == 7 and max(info.lengths_train.max(), info.lengths_test.max()) == 29
    for x, lengths in ((x_train, info.lengths_train), (x_test, info.lengths_test)):
        real = np.any(x != 0, axis=2)  # a time step Masking(0.0) keeps
        assert (real.sum(axis=1) == lengths).all() and all(real[i, :n].all() for i, n in enumerate(lengths))


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown dataset 'mnist': expected one of italy_power_demand, japanese_vowels"):
        datasets.load("mnist")


def test_conversion_script_round_trip(tmp_path):
    """The script parses .ts files (header, multivariate ':'-separated dimensions, labels) itself."""
    make = _script()
    src = tmp_path / "src" / "JapaneseVowels"
    src.mkdir(parents=True)
    header = "#comment\n@problemName JapaneseVowels\n@univariate false\n@dimensions 2\n@equalLength false\n" \
             "@classLabel true a b c\n@data\n"
    (src / "JapaneseVowels_TRAIN.ts").write_text(header + "1,2,3:4,5,6:b\n7,8:9,10:a\n")
    (src / "JapaneseVowels_TEST.ts").write_text(header + "0.5:0.25:c\n")
    out = make.convert(tmp_path / "src", "japanese_vowels", out_dir=tmp_path)
    with np.load(out) as f:
        assert f["classes"].tolist() == ["a", "b", "c"]
        assert f["y_train"].tolist() == [1, 0] and f["lengths_train"].tolist() == [3, 2]
        np.testing.assert_array_equal(f["x_train"], [[1, 4], [2, 5], [3, 6], [7, 9], [8, 10]])
        assert f["y_test"].tolist() == [2]

    (src / "JapaneseVowels_TEST.ts").write_text(header + "0,1:0,2:c\n")
    with pytest.raises(ValueError, match="a real time step is all zeros"):
        make.convert(tmp_path / "src", "japanese_vowels", out_dir=tmp_path)
    (src / "JapaneseVowels_TEST.ts").write_text(header + "1,2:3:c\n")
    with pytest.raises(ValueError, match="dimensions have different lengths"):
        make.convert(tmp_path / "src", "japanese_vowels", out_dir=tmp_path)
    (src / "JapaneseVowels_TEST.ts").write_text(header + "1:2:z\n")
    with pytest.raises(ValueError, match=r"labels \['z'\] not in the declared classes"):
        make.convert(tmp_path / "src", "japanese_vowels", out_dir=tmp_path)
