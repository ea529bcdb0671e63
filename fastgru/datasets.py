"""Two small real time-series classification data sets, shipped inside the package.

From the UCR/UEA time series classification archive (https://www.timeseriesclassification.com),
converted from the ``.ts`` files by ``scripts/make_datasets.py``:

* ``"italy_power_demand"``: 24 hourly electricity demand values of one day in Italy (univariate,
  length 24); class 0 = a day from October to March, class 1 = April to September. 67 training and
  1029 test series. Keogh et al., "Intelligent Icons", ICDM 2006.
* ``"japanese_vowels"``: 12 LPC cepstrum coefficients per frame of 9 male speakers uttering the
  vowels /ae/ (variable length 7-29); the class is the speaker (0-8). 270 training and 370 test
  series, zero-padded at the end to length 29 (no real frame is all zeros, so ``Masking(0.0)``
  recovers the true lengths). Kudo, Toyama and Shimbo, Pattern Recognition Letters 20 (1999).

Example::

    (x_train, y_train), (x_test, y_test) = fastgru.datasets.load("italy_power_demand")
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

_DATA_DIR = Path(__file__).with_name("data")

NAMES = ("italy_power_demand", "japanese_vowels")

_CITATIONS = {
    "italy_power_demand": 'E. Keogh, L. Wei, X. Xi, S. Lonardi, J. Shieh and S. Sirowy, "Intelligent Icons: '
                          'Integrating Lite-Weight Data Mining and Visualization into GUI Operating Systems", '
                          "ICDM 2006.",
    "japanese_vowels": 'M. Kudo, J. Toyama and M. Shimbo, "Multidimensional Curve Classification Using '
                       'Passing-Through Regions", Pattern Recognition Letters 20(11-13):1103-1111, 1999.',
}
_URLS = {
    "italy_power_demand": "https://www.timeseriesclassification.com/description.php?Dataset=ItalyPowerDemand",
    "japanese_vowels": "https://www.timeseriesclassification.com/description.php?Dataset=JapaneseVowels",
}


@dataclass(frozen=True)
class DatasetInfo:
    """What :func:`info` returns about a bundled data set."""

    name: str
    classes: tuple[str, ...]
    """The label used in the original archive for each class index 0..n-1."""
    lengths_train: np.ndarray
    """True length of each training series (before zero padding)."""
    lengths_test: np.ndarray
    """True length of each test series."""
    n_features: int
    citation: str
    url: str

    @property
    def n_classes(self) -> int:
        return len(self.classes)


def _canonical(name: str) -> str:
    key = "".join(ch for ch in name.lower() if ch.isalnum())
    for known in NAMES:
        if key == known.replace("_", ""):
            return known
    raise ValueError(f"unknown dataset {name!r}: expected one of {', '.join(NAMES)}")


def _pad(flat: np.ndarray, lengths: np.ndarray, maxlen: int) -> np.ndarray:
    out = np.zeros((len(lengths), maxlen, flat.shape[1]), dtype=np.float32)
    start = 0
    for i, n in enumerate(lengths.astype(np.int64)):
        out[i, :n] = flat[start:start + n]
        start += n
    return out


def load(name: str) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Load a bundled data set as ``((x_train, y_train), (x_test, y_test))``.

    Args:
        name: ``"italy_power_demand"`` or ``"japanese_vowels"`` (case, ``-`` and ``_`` ignored, so
            ``"ItalyPowerDemand"`` and ``"japanese-vowels"`` work too).

    Returns:
        ``x`` float32 of shape (samples, timesteps, features), series shorter than the longest one
        (of both splits) padded with zeros at the end; ``y`` int64 class indices 0..n-1.
        ItalyPowerDemand: (67, 24, 1) and (1029, 24, 1); JapaneseVowels: (270, 29, 12) and (370, 29, 12).
    """
    if not isinstance(name, str):
        raise TypeError(f"datasets.load expects a data set name (a string), received {type(name).__name__}")
    key = _canonical(name)
    with np.load(_DATA_DIR / f"{key}.npz", allow_pickle=False) as f:
        maxlen = int(max(f["lengths_train"].max(), f["lengths_test"].max()))
        return tuple(
            (_pad(f[f"x_{split}"], f[f"lengths_{split}"], maxlen), f[f"y_{split}"].astype(np.int64))
            for split in ("train", "test")
        )  # type: ignore[return-value]


def info(name: str) -> DatasetInfo:
    """Class labels, true series lengths, feature count, citation and source of a bundled data set."""
    key = _canonical(name)
    with np.load(_DATA_DIR / f"{key}.npz", allow_pickle=False) as f:
        return DatasetInfo(name=key, classes=tuple(str(c) for c in f["classes"]),
                           lengths_train=f["lengths_train"].astype(np.int64),
                           lengths_test=f["lengths_test"].astype(np.int64), n_features=int(f["x_train"].shape[1]),
                           citation=_CITATIONS[key], url=_URLS[key])
