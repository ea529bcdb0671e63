"""``fastgru predict``: read sequences from .npy/.npz/.csv, run a model file on them, write the outputs."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .errors import CLIError


def read_input(path: str | Path, *, key: str | None = None, timesteps: int | None = None,
               model_shape: tuple | None = None) -> np.ndarray:
    """Read the model input from ``path`` (.npy, .npz or .csv); raises :class:`CLIError` when it cannot.

    A .csv holds one sequence per row, ``timesteps * features`` values in time-major order (all
    features of step 0, then step 1, ...); ``timesteps`` defaults to the model's fixed length.
    """
    path = Path(path)
    if not path.is_file():
        raise CLIError(f"input file {path} does not exist" if not path.exists() else f"input {path} is not a file")
    suffix = path.suffix.lower()
    if key is not None and suffix != ".npz":
        raise CLIError(f"--key only applies to .npz inputs; {path} is a {suffix or 'suffix-less'} file")
    if timesteps is not None and suffix != ".csv":
        raise CLIError(f"--timesteps only applies to .csv inputs; {path} is a {suffix or 'suffix-less'} file")
    if suffix == ".npy":
        return _read_npy(path)
    if suffix == ".npz":
        return _read_npz(path, key)
    if suffix == ".csv":
        return _read_csv(path, timesteps, model_shape)
    if suffix == ".txt":  # (a text model: one text per line)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise CLIError(f"{path}: not a UTF-8 text file ({exc})") from None
        out = np.empty(len(lines), dtype=object)
        out[:] = lines
        return out
    raise CLIError(f"unsupported input type {suffix or '(no suffix)'} for {path}: expected .npy, .npz, .csv or .txt")


#: the longest .npy header read (NumPy's own default limit for files it does not trust)
NPY_MAX_HEADER = 10000


def _read_npy(path: Path) -> np.ndarray:
    """A .npy file's array, its header read first within bounds: a header over NPY_MAX_HEADER bytes, an
    object dtype or a shape that needs more bytes than the file holds is refused before any allocation."""
    fmt = np.lib.format
    try:
        with open(path, "rb") as f:
            version = fmt.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = fmt.read_array_header_1_0(f, max_header_size=NPY_MAX_HEADER)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, dtype = fmt.read_array_header_2_0(f, max_header_size=NPY_MAX_HEADER)
            else:
                raise ValueError(f"unsupported .npy format version {version}")
            if dtype.hasobject:
                raise ValueError(f"it holds Python objects (dtype {dtype}), which fastgru does not load")
            needed = int(np.prod(shape, dtype=object)) * dtype.itemsize
            available = path.stat().st_size - f.tell()
            if needed > available:
                raise ValueError(f"its header declares shape {shape} of {dtype} ({needed:,} bytes) but the file "
                                 f"holds only {available:,} bytes of data")
            array = np.fromfile(f, dtype=dtype, count=int(np.prod(shape, dtype=object)))
            return array.reshape(shape, order="F" if fortran else "C")
    except (OSError, ValueError, EOFError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "Header info length" in message:
            message = f"its header is longer than {NPY_MAX_HEADER} bytes ({message})"
        raise CLIError(f"cannot read {path} as a .npy array: {message}") from None


def _read_npz(path: Path, key: str | None) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as f:
            names = list(f.files)
            if key is None:
                if len(names) != 1:
                    raise CLIError(f"{path} holds {len(names)} arrays ({', '.join(names) or 'none'}); "
                                   f"choose one with --key NAME")
                key = names[0]
            if key not in names:
                raise CLIError(f"{path} has no array {key!r}; it holds: {', '.join(names) or 'nothing'}")
            return f[key]
    except CLIError:
        raise
    except Exception as exc:  # OSError, ValueError, zipfile.BadZipFile, EOFError from a damaged archive
        raise CLIError(f"cannot read {path} as a .npz archive: {type(exc).__name__}: {exc}") from None


def _read_csv(path: Path, timesteps: int | None, model_shape: tuple | None) -> np.ndarray:
    try:
        rows = np.loadtxt(path, delimiter=",", dtype=np.float32, ndmin=2, comments="#")
    except ValueError:
        try:  # a header line
            rows = np.loadtxt(path, delimiter=",", dtype=np.float32, ndmin=2, comments="#", skiprows=1)
        except ValueError as exc:
            raise CLIError(f"cannot read {path} as CSV numbers (one sequence per row): {exc}") from None
    if rows.size == 0:
        raise CLIError(f"{path} holds no rows")
    n, width = rows.shape
    given = timesteps is not None
    if timesteps is None and model_shape is not None and len(model_shape) >= 2:
        if model_shape[1] is not None:
            timesteps = int(model_shape[1])
        elif len(model_shape) == 3 and model_shape[2] is not None and width % int(model_shape[2]) == 0:
            timesteps = width // int(model_shape[2])
    if timesteps is None:
        raise CLIError(f"the model does not fix the sequence length; give --timesteps for {path}")
    if width % timesteps:
        source = "--timesteps" if given else "the model's sequence length"
        raise CLIError(f"{path}: rows have {width} values, not a multiple of {timesteps} timesteps ({source}); "
                       f"each row must hold timesteps * features values")
    if model_shape is not None and len(model_shape) == 2:  # token ids for an Embedding model
        if width != timesteps:
            raise CLIError(f"{path}: rows have {width} values; the model takes {timesteps} token ids per row")
        return rows.astype(np.int64)
    return rows.reshape(n, timesteps, width // timesteps)


def check_shape(x: np.ndarray, model_shape: tuple | None, source: str, texts: bool = False) -> None:
    """Raise :class:`CLIError` naming both shapes when ``x`` cannot go into a model expecting ``model_shape``.

    The time axis may differ from the model's (recurrent layers take any length, as in ``predict``). ``texts``: the
    model takes strings (``predict`` checks and shapes them).
    """
    if texts and x.dtype.kind in "USO":
        if x.ndim == 0 or len(x) == 0:
            raise CLIError(f"{source} holds no texts (shape {x.shape})")
        return
    if x.dtype == object or x.dtype.kind not in "fiub":
        raise CLIError(f"{source}: expected a numeric array, found dtype {x.dtype}"
                       + (" (texts; this model's input is not strings)" if x.dtype.kind in "USO" else ""))
    if model_shape is not None:
        expected = "(batch, " + ", ".join("any" if d is None else str(d) for d in model_shape[1:]) + ")"
        if x.ndim != len(model_shape):
            hint = ""
            if x.ndim == len(model_shape) - 1 and model_shape[-1] == 1:
                hint = " (one feature per step: add a trailing axis of length 1)"
            raise CLIError(f"{source} has shape {x.shape}; the model expects {expected}{hint}")
        for axis in range(2, x.ndim):
            if model_shape[axis] is not None and x.shape[axis] != model_shape[axis]:
                raise CLIError(f"{source} has shape {x.shape}; the model expects {expected} "
                               f"({model_shape[axis]} features per step, found {x.shape[axis]})")
    if x.ndim == 0 or len(x) == 0:
        raise CLIError(f"{source} holds no sequences (shape {x.shape})")


def write_output(path: str | Path, y) -> None:
    """Write predictions to .npy, .npz (array ``predictions``) or .csv (one row per sequence)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".npz", ".csv"):
        raise CLIError(f"unsupported output type {suffix or '(no suffix)'} for {path}: expected .npy, .npz or .csv")
    if not path.parent.is_dir():
        raise CLIError(f"output folder {path.parent} does not exist")
    if isinstance(y, list):  # return_state models: several outputs
        if suffix != ".npz":
            raise CLIError(f"the model has {len(y)} outputs; write them to an .npz file (predictions_0, ...)")
        np.savez(path, **{f"predictions_{i}": a for i, a in enumerate(y)})
    elif suffix == ".npy":
        np.save(path, y)
    elif suffix == ".npz":
        np.savez(path, predictions=y)
    else:
        np.savetxt(path, np.asarray(y).reshape(len(y), -1), delimiter=",", fmt="%.9g")


def predict_file(model_path: str, input_path: str, output_path: str, *, batch_size: int | None = None,
                 key: str | None = None, timesteps: int | None = None, quiet: bool = False) -> None:
    """Load ``model_path``, run it on ``input_path``, write ``output_path`` (see ``fastgru predict -h``)."""
    import fastgru as fg

    if not Path(model_path).exists():  # a file, or a Keras 2 SavedModel directory
        raise CLIError(f"model file {model_path} does not exist")
    suffix = Path(output_path).suffix.lower()
    if suffix not in (".npy", ".npz", ".csv"):
        raise CLIError(f"unsupported output type {suffix or '(no suffix)'} for {output_path}: "
                       f"expected .npy, .npz or .csv")
    model = fg.load_model(model_path, compile=False)
    names = list(getattr(model, "input_names", None) or [])
    if len(names) > 1:  # several inputs: an .npz holding one array per input, by name
        x = _read_named_inputs(model, names, input_path, key)
    else:
        model_shape = getattr(model, "input_shape", None)
        model_shape = tuple(model_shape) if model_shape is not None else None
        x = _read_single_input(model, input_path, key, timesteps, model_shape)
    start = time.perf_counter()
    try:
        y = model.predict(x, batch_size=batch_size)
    except (ValueError, TypeError) as exc:
        described = ", ".join(f"{k} {v.shape}" for k, v in x.items()) if isinstance(x, dict) else \
            f"shape {x.shape}, dtype {x.dtype}"
        raise CLIError(f"the model cannot run on {input_path} ({described}): {exc}") from None
    seconds = time.perf_counter() - start
    write_output(output_path, y)
    if not quiet:
        n = len(next(iter(x.values()))) if isinstance(x, dict) else len(x)
        shapes = [a.shape for a in y] if isinstance(y, list) else np.shape(y)
        print(f"wrote {output_path}: {n} sequences -> outputs of shape {shapes} "
              f"in {seconds:.3f} s ({n / max(seconds, 1e-9):,.0f} sequences/s)")


def _read_named_inputs(model, names: list, input_path: str, key: str | None) -> dict:
    """A several-input model's inputs: the arrays of an .npz named after them, each checked against its input."""
    if Path(input_path).suffix.lower() != ".npz" or key is not None:
        raise CLIError(f"the model takes {len(names)} inputs ({', '.join(names)}): give an .npz holding one array "
                       "per input, named after it (without --key)")
    if not Path(input_path).is_file():
        raise CLIError(f"input file {input_path} does not exist")
    try:
        with np.load(input_path, allow_pickle=False) as f:
            missing = [n for n in names if n not in f.files]
            if missing:
                raise CLIError(f"{input_path} holds {', '.join(f.files) or 'nothing'}; the model's inputs are "
                               f"{', '.join(names)} (missing: {', '.join(missing)})")
            x = {n: f[n] for n in names}
    except CLIError:
        raise
    except Exception as exc:  # OSError, ValueError, zipfile.BadZipFile, EOFError from a damaged archive
        raise CLIError(f"cannot read {input_path} as a .npz archive: {type(exc).__name__}: {exc}") from None
    for name, shape in zip(names, model.input_shape):
        check_shape(x[name], tuple(shape), f"{input_path}[{name}]")
    if len({len(a) for a in x.values()}) != 1:
        raise CLIError(f"{input_path}: the inputs hold different numbers of sequences "
                       f"({', '.join(f'{k} {len(v)}' for k, v in x.items())})")
    return {k: v.astype(np.float32, copy=False) if v.dtype.kind == "f" and v.dtype != np.float64 else v
            for k, v in x.items()}


def _read_single_input(model, input_path: str, key, timesteps, model_shape) -> np.ndarray:
    x = read_input(input_path, key=key, timesteps=timesteps, model_shape=model_shape)
    takes_text = model._takes_strings() if hasattr(model, "_takes_strings") else any(
        getattr(t.layer, "input_dtype", None) == "string" for t in getattr(model, "inputs", None) or [])
    check_shape(x, model_shape, input_path, texts=takes_text)
    if x.dtype.kind == "f" and x.dtype != np.float64:
        x = x.astype(np.float32, copy=False)
    return x
