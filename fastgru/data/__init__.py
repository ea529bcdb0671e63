"""The small embedded dataset that ``fastgru demo`` trains on."""

from __future__ import annotations

from pathlib import Path

import numpy as np

CLASS_NAMES = ("sine", "square", "sawtooth")


def load_waveforms() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((x_train (1200, 50, 1) float32, y_train (1200,) int), (x_test (300, 50, 1), y_test (300,))).

    Noisy sine / square / sawtooth signals labelled 0 / 1 / 2 (scripts/make_demo_data.py makes them).
    """
    with np.load(Path(__file__).with_name("waveforms.npz")) as f:
        return ((f["x_train"].astype(np.float32), f["y_train"].astype(np.int64)),
                (f["x_test"].astype(np.float32), f["y_test"].astype(np.int64)))
