"""Convert the UCR/UEA ``.ts`` files of ItalyPowerDemand and JapaneseVowels into fastgru's ``.npz`` files.

The ``.ts`` files are public; the ``aeon`` wheel on PyPI carries them in ``aeon/datasets/data/``
(aeon itself is not needed, only its files)::

    pip download aeon --no-deps -d /tmp/aeon && cd /tmp/aeon && unzip -q aeon-*.whl 'aeon/datasets/data/*'
    python scripts/make_datasets.py /tmp/aeon/aeon/datasets/data

Each output file ``fastgru/data/<name>.npz`` holds, for ``split`` in train and test:

* ``x_<split>``: float32 values of all series concatenated along time, shape (sum of lengths, features);
* ``lengths_<split>``: int16 length of each series;
* ``y_<split>``: uint8 class index 0..n-1;
* ``classes``: the original label of each class index (``classes[y]`` is the label in the ``.ts`` file).

``fastgru.datasets.load`` pads the series to the longest one with zeros. Values are written exactly as
float32; nothing is rescaled.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

DATASETS = {"italy_power_demand": "ItalyPowerDemand", "japanese_vowels": "JapaneseVowels"}
OUT_DIR = Path(__file__).resolve().parents[1] / "fastgru" / "data"


def parse_ts(path: Path) -> tuple[list[np.ndarray], list[str], list[str]]:
    """Parse a ``.ts`` file: (series as (length, features) arrays, labels, declared class labels)."""
    series: list[np.ndarray] = []
    labels: list[str] = []
    classes: list[str] = []
    in_data = False
    for lineno, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            key, _, value = line.partition(" ")
            if key.lower() == "@classlabel":
                flag, *classes = value.split()
                if flag.lower() != "true":
                    raise ValueError(f"{path}:{lineno}: expected '@classLabel true ...', found {line!r}")
            elif key.lower() == "@data":
                in_data = True
            elif key.lower() == "@missing" and value.strip().lower() != "false":
                raise ValueError(f"{path}:{lineno}: series with missing values are not supported")
            continue
        *dims, label = line.split(":")
        arrays = [np.array(d.split(","), dtype=np.float64) for d in dims]
        if len({len(a) for a in arrays}) != 1:
            raise ValueError(f"{path}:{lineno}: dimensions have different lengths {[len(a) for a in arrays]}")
        series.append(np.stack(arrays, axis=1))
        labels.append(label.strip())
    if not series:
        raise ValueError(f"{path}: no '@data' section or no series in it")
    return series, labels, classes


def convert(src_dir: Path, name: str, out_dir: Path = OUT_DIR) -> Path:
    """Write ``out_dir/<name>.npz`` from ``src_dir/<Problem>/<Problem>_{TRAIN,TEST}.ts``."""
    problem = DATASETS[name]
    arrays: dict[str, np.ndarray] = {}
    classes: list[str] | None = None
    for split in ("train", "test"):
        series, labels, declared = parse_ts(src_dir / problem / f"{problem}_{split.upper()}.ts")
        classes = classes or declared
        index = {c: i for i, c in enumerate(classes)}
        unknown = sorted(set(labels) - set(index))
        if unknown:
            raise ValueError(f"{problem} {split}: labels {unknown} not in the declared classes {classes}")
        for s in series:
            if np.any(np.all(s == 0.0, axis=1)):
                raise ValueError(f"{problem} {split}: a real time step is all zeros; zero padding would hide it")
        arrays[f"x_{split}"] = np.concatenate(series).astype(np.float32)
        arrays[f"lengths_{split}"] = np.array([len(s) for s in series], dtype=np.int16)
        arrays[f"y_{split}"] = np.array([index[lab] for lab in labels], dtype=np.uint8)
    arrays["classes"] = np.array(classes)
    out = out_dir / f"{name}.npz"
    np.savez_compressed(out, **arrays)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("src", type=Path, help="folder holding ItalyPowerDemand/ and JapaneseVowels/ (.ts files)")
    args = parser.parse_args()
    for name in DATASETS:
        out = convert(args.src, name)
        with np.load(out) as f:
            print(f"{out} ({out.stat().st_size / 1024:.0f} KiB): "
                  + ", ".join(f"{k} {f[k].shape}" for k in sorted(f.files)))


if __name__ == "__main__":
    main()
