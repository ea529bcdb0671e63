"""Regenerate fastgru/data/waveforms.npz, the small dataset `fastgru demo` trains on.

Three classes of noisy periodic signals (sine, square, sawtooth) with random frequency, phase and
amplitude, 50 steps and 1 feature each. Deterministic (seed 2026). Run: python scripts/make_demo_data.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

STEPS, N_TRAIN, N_TEST = 50, 1200, 300


def make(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.integers(0, 3, n)
    t = np.arange(STEPS)[None, :]
    freq = rng.uniform(0.03, 0.12, (n, 1))
    phase = rng.uniform(0, 1, (n, 1))
    amp = rng.uniform(0.5, 1.5, (n, 1))
    cycle = (t * freq + phase) % 1.0
    waves = np.stack([np.sin(2 * np.pi * cycle), np.where(cycle < 0.5, 1.0, -1.0), 2 * cycle - 1])
    x = amp * waves[labels, np.arange(n)] + rng.normal(0, 0.3, (n, STEPS))
    return x[..., None].astype(np.float16), labels.astype(np.uint8)


def main() -> None:
    rng = np.random.default_rng(2026)
    x_train, y_train = make(N_TRAIN, rng)
    x_test, y_test = make(N_TEST, rng)
    out = Path(__file__).resolve().parents[1] / "fastgru" / "data" / "waveforms.npz"
    np.savez_compressed(out, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
