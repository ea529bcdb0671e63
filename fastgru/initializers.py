"""Weight initializers by name, with Keras 3's shapes, fans and distributions."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable

import numpy as np

from .errors import UnsupportedKerasFeature

Initializer = Callable[[tuple, np.dtype, np.random.Generator], np.ndarray]


def _fans(shape: tuple) -> tuple[float, float]:
    if len(shape) == 0:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    if len(shape) == 2:
        return float(shape[0]), float(shape[1])
    receptive = math.prod(shape[:-2])
    return float(shape[-2] * receptive), float(shape[-1] * receptive)


def _variance_scaling(scale: float, mode: str, distribution: str):
    def init(shape, dtype, rng):
        fan_in, fan_out = _fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
        s = scale / max(1.0, n)
        if distribution == "uniform":
            limit = math.sqrt(3.0 * s)
            return rng.uniform(-limit, limit, shape).astype(dtype)
        if distribution == "normal":
            return (rng.standard_normal(shape) * math.sqrt(s)).astype(dtype)
        # truncated normal: stddev corrected for the truncation at 2 sigma, as Keras does
        std = math.sqrt(s) / 0.87962566103423978
        return _truncated(rng, shape, std).astype(dtype)

    return init


def _truncated(rng, shape, std):
    out = rng.standard_normal(shape)
    bad = np.abs(out) > 2
    while bad.any():
        out[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2
    return out * std


def _orthogonal(gain: float = 1.0):
    def init(shape, dtype, rng):
        rows = math.prod(shape[:-1])
        cols = shape[-1]
        flat = (max(rows, cols), min(rows, cols))
        a = rng.standard_normal(flat)
        q, r = np.linalg.qr(a)
        q *= np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return (gain * q.reshape(shape)).astype(dtype)

    return init


def _identity(gain: float = 1.0):
    def init(shape, dtype, rng):
        if len(shape) != 2:
            raise ValueError(f"the identity initializer makes 2-D weights only, asked for shape {tuple(shape)}")
        return (gain * np.eye(*shape)).astype(dtype)

    return init


def _constant(value):
    def init(shape, dtype, rng):
        if np.ndim(value) and np.shape(value) != tuple(shape):
            raise ValueError(f"Constant initializer: its value has shape {np.shape(value)}, the weight {tuple(shape)}")
        return np.full(shape, value, dtype=dtype)

    return init


def _stft(side: str = "real", window="hann", scaling: str | None = "density", periodic: bool = False):
    """Keras's ``STFT``: conv kernels (frame_length, 1, bins) of the real or imaginary part of a windowed DFT,
    computed in the weight's dtype in Keras's order of operations."""
    if side not in ("real", "imag"):
        raise ValueError(f"STFT initializer: side should be 'real' or 'imag', received {side!r}")
    if scaling not in (None, "density", "spectrum"):
        raise ValueError(f"STFT initializer: scaling should be None, 'density' or 'spectrum', received {scaling!r}")
    window_values(window, None, bool(periodic))  # (an unknown window name refused now)

    def init(shape, dtype, rng):
        if len(shape) != 3:
            raise ValueError(f"STFT initializer: expected a shape (frame_length, channels, bins), received {shape}")
        frame_length, _, bins = (int(d) for d in shape)
        dtype = np.dtype(dtype)
        time = np.arange(frame_length, dtype=dtype).reshape(frame_length, 1, 1)
        freq = np.arange(bins, dtype=dtype).reshape(1, 1, bins) / dtype.type((bins - 1) * 2)
        angles = (dtype.type(-2) * time) * freq * dtype.type(np.pi)
        kernel = (np.cos(angles) if side == "real" else np.sin(angles)).astype(dtype)
        win = window_values(window, frame_length, bool(periodic))
        if win is None:
            return np.broadcast_to(kernel, tuple(shape)).copy()
        win = win.astype(dtype).reshape(frame_length, 1, 1)
        scale = (np.sqrt(np.sum(np.square(win))) if scaling == "density" else np.sum(np.abs(win))
                 if scaling == "spectrum" else dtype.type(1))
        return np.broadcast_to(kernel * win / scale, tuple(shape)).astype(dtype)

    return init


def window_values(window, length: int | None, periodic: bool) -> np.ndarray | None:
    """The ``length`` values of a window: a ``scipy.signal.get_window`` name (``periodic``: the DFT-even form),
    array values given as they are, or None for no window; ``length`` None checks the window only. ValueError for
    an unknown name, values that are not a finite vector, or a wrong length."""
    if window is None:
        return None
    if isinstance(window, str):
        from scipy import signal

        try:
            return np.asarray(signal.get_window(window, length or 1, fftbins=periodic), dtype=np.float64)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"window {window!r} is not a window scipy.signal.get_window knows: {exc}") from None
    try:
        values = np.asarray(window, dtype=np.float64)
    except (ValueError, TypeError):
        values = np.zeros((0, 0))
    if values.ndim != 1 or (length is not None and values.shape[0] != length) or not np.all(np.isfinite(values)):
        raise ValueError(f"a window given as values must be a vector of finite numbers, as many as the frame length "
                         f"({length if length is not None else 'frame_length'}), received {window!r:.80}")
    return values


_FACTORIES: dict[str, Callable[..., Initializer]] = {
    "zeros": lambda: _constant(0.0),
    "ones": lambda: _constant(1.0),
    "constant": lambda value=0.0: _constant(value),
    "glorot_uniform": lambda: _variance_scaling(1.0, "fan_avg", "uniform"),
    "glorot_normal": lambda: _variance_scaling(1.0, "fan_avg", "truncated"),
    "he_uniform": lambda: _variance_scaling(2.0, "fan_in", "uniform"),
    "he_normal": lambda: _variance_scaling(2.0, "fan_in", "truncated"),
    "lecun_uniform": lambda: _variance_scaling(1.0, "fan_in", "uniform"),
    "lecun_normal": lambda: _variance_scaling(1.0, "fan_in", "truncated"),
    "variance_scaling": lambda scale=1.0, mode="fan_in", distribution="truncated_normal": _variance_scaling(
        scale, mode, {"truncated_normal": "truncated", "untruncated_normal": "normal"}.get(distribution, distribution)
    ),
    "orthogonal": lambda gain=1.0: _orthogonal(gain),
    "identity": lambda gain=1.0: _identity(gain),
    "random_normal": lambda mean=0.0, stddev=0.05: (
        lambda shape, dtype, rng: (mean + stddev * rng.standard_normal(shape)).astype(dtype)
    ),
    "random_uniform": lambda minval=-0.05, maxval=0.05: (
        lambda shape, dtype, rng: rng.uniform(minval, maxval, shape).astype(dtype)
    ),
    "truncated_normal": lambda mean=0.0, stddev=0.05: (
        lambda shape, dtype, rng: (mean + _truncated(rng, shape, stddev)).astype(dtype)
    ),
    "stft": _stft,
}

#: Keras's class names ("GlorotUniform", "RandomNormal", ...) and its short aliases -> the names above
_CAMEL = {"".join(p.capitalize() for p in k.split("_")): k for k in _FACTORIES}
_CAMEL.update(uniform="random_uniform", normal="random_normal")  # Embedding's default is "uniform"
# (the class names Keras 3.0-3.5 wrote in files; later versions write "Orthogonal" and "Identity")
_CAMEL.update(OrthogonalInitializer="orthogonal", IdentityInitializer="identity")
_CAMEL.update(STFT="stft", STFTInitializer="stft")


class KerasInitializer:
    """Keras 3's initializer objects (``Constant(matrix)``, ``GlorotUniform(seed=1)``, ``Orthogonal(gain=2.0)``):
    given to a layer, drawn there from the layer's generator; called as Keras's ``init(shape, dtype=None)``, drawn
    from a generator of the object's ``seed`` (or from the library's random state). ``get_config`` is Keras's."""

    keras_name = ""
    defaults: dict = {}

    def __init__(self, *args, **kwargs):
        names = list(type(self).defaults)
        if len(args) > len(names):
            raise TypeError(f"{type(self).__name__} takes at most {len(names)} positional arguments ({names})")
        unknown = sorted(set(kwargs) - set(names))
        if unknown:
            raise TypeError(f"{type(self).__name__} got unexpected keyword arguments {unknown}; it takes {names}")
        self._config = {**type(self).defaults, **dict(zip(names, args)), **kwargs}
        self._drawer = _drawer({"class_name": self.keras_name, "config": self._config})  # (options checked now)

    def get_config(self) -> dict:
        value = self._config.get("value")
        return {**self._config, **({"value": np.asarray(value).tolist()} if np.ndim(value) else {})}

    def __call__(self, shape, dtype=None, rng=None) -> np.ndarray:
        """Keras's ``init(shape, dtype=None)``, or fastgru's ``init(shape, dtype, rng)`` (a layer's generator; an
        object of an integer ``seed`` draws from a generator of that seed whatever it is given)."""
        from .random import make_rng

        seed = self._config.get("seed")
        if rng is None or seed is not None:
            rng = make_rng(seed)
        return self._drawer(tuple(shape), np.dtype(dtype or "float32"), rng)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r:.40}' for k, v in self._config.items())})"


def _initializer_class(keras_name: str, **defaults) -> type:
    seeded = {} if keras_name in ("Zeros", "Ones", "Constant", "Identity", "STFT") else {"seed": None}
    return type(keras_name, (KerasInitializer,), {"keras_name": keras_name, "defaults": {**defaults, **seeded},
                                                  "__module__": __name__,
                                                  "__doc__": f"Keras's ``{keras_name}`` initializer."})


Zeros = _initializer_class("Zeros")
Ones = _initializer_class("Ones")
Constant = _initializer_class("Constant", value=0.0)
GlorotUniform = _initializer_class("GlorotUniform")
GlorotNormal = _initializer_class("GlorotNormal")
HeUniform = _initializer_class("HeUniform")
HeNormal = _initializer_class("HeNormal")
LecunUniform = _initializer_class("LecunUniform")
LecunNormal = _initializer_class("LecunNormal")
Orthogonal = _initializer_class("Orthogonal", gain=1.0)
Identity = _initializer_class("Identity", gain=1.0)
RandomNormal = _initializer_class("RandomNormal", mean=0.0, stddev=0.05)
RandomUniform = _initializer_class("RandomUniform", minval=-0.05, maxval=0.05)
TruncatedNormal = _initializer_class("TruncatedNormal", mean=0.0, stddev=0.05)
VarianceScaling = _initializer_class("VarianceScaling", scale=1.0, mode="fan_in", distribution="truncated_normal")
STFT = _initializer_class("STFT", side="real", window="hann", scaling="density", periodic=False)


#: the initializer classes by the names above
_CLASSES = {_CAMEL[cls.keras_name]: cls for cls in (Zeros, Ones, Constant, GlorotUniform, GlorotNormal, HeUniform,
                                                     HeNormal, LecunUniform, LecunNormal, Orthogonal, Identity,
                                                     RandomNormal, RandomUniform, TruncatedNormal, VarianceScaling,
                                                     STFT)}


def serialize(initializer):
    """What a layer's config holds for ``initializer``: a name or config as given, Keras's config dict for an
    initializer object; a Python function cannot be written into a model file (ValueError, naming it)."""
    if isinstance(initializer, (str, dict)) or initializer is None:
        return initializer
    if hasattr(initializer, "get_config"):
        name = getattr(initializer, "keras_name", type(initializer).__name__)
        config = {k: (np.asarray(v).tolist() if isinstance(v, np.ndarray) else v)
                  for k, v in dict(initializer.get_config()).items()}
        return {"module": "keras.initializers", "class_name": name, "config": config, "registered_name": None}
    raise ValueError(f"initializer {getattr(initializer, '__name__', initializer)!r} is a Python function, which a "
                     "model file cannot hold: give a name, a config dict or an fg.initializers object")


def _value(value):
    """A config's value, Keras's serialized NumPy array (``{"class_name": "__numpy__", ...}``) made an array."""
    if isinstance(value, dict) and value.get("class_name") == "__numpy__" and isinstance(value.get("config"), dict):
        return np.asarray(value["config"].get("value"), dtype=value["config"].get("dtype") or "float32")
    return value


def constant_shape(identifier) -> tuple | None:
    """The shape of a ``Constant`` config's array value (a pretrained embedding matrix), else None."""
    if isinstance(identifier, dict) and identifier.get("class_name") == "Constant":
        value = _value((identifier.get("config") or {}).get("value"))
        return tuple(np.shape(value)) if np.ndim(value) else None
    return None


def _keras_callable(function) -> Initializer:
    """A Keras-style initializer ``f(shape, dtype=None)`` (a user's function, or a Keras initializer object fastgru
    has no class for) as fastgru's ``init(shape, dtype, rng)``; what it returns is checked against the shape."""
    def init(shape, dtype, rng):
        value = np.asarray(function(tuple(shape), dtype=np.dtype(dtype).name))
        if value.shape != tuple(shape):
            raise ValueError(f"initializer {getattr(function, '__name__', type(function).__name__)} returned shape "
                             f"{value.shape}, expected {tuple(shape)}")
        return value.astype(dtype)

    return init


def _takes_a_generator(function) -> bool:
    """Whether ``function`` takes fastgru's ``(shape, dtype, rng)`` (three positional arguments)."""
    try:
        inspect.signature(function).bind(None, None, None)
    except (TypeError, ValueError):
        return False
    return True


def get(identifier) -> Initializer:
    """Initializer from a name ("glorot_uniform"), a Keras config dict, an initializer object (fastgru's or
    Keras's: ``Constant(matrix)``, ``GlorotUniform(seed=1)``), or a function: fastgru's ``f(shape, dtype, rng)``
    or Keras's ``f(shape, dtype=None)``. A name or a config gives the initializer object, as Keras's ``get``
    (``get("he_normal")`` is ``HeNormal()``, which ``serialize`` writes as Keras does); it is called as
    ``init(shape, dtype=None)`` or as ``init(shape, dtype, rng)``."""
    if isinstance(identifier, KerasInitializer):
        return identifier
    if isinstance(identifier, (str, dict)):
        _drawer(identifier)  # (checked: an unknown name or a bad option is refused here)
        name = identifier.get("class_name") if isinstance(identifier, dict) else identifier
        config = (identifier.get("config") or {}) if isinstance(identifier, dict) else {}
        cls = _CLASSES[_CAMEL.get(name, name)]
        keeps_none = cls is STFT  # (its window=None and scaling=None mean none)
        return cls(**{k: _value(v) for k, v in config.items() if k in cls.defaults and (v is not None or keeps_none)})
    return _drawer(identifier)


def _drawer(identifier) -> Initializer:
    """:func:`get`'s initializer as fastgru's ``init(shape, dtype, rng)`` function."""
    if hasattr(identifier, "get_config") and callable(identifier):  # (an object: by its class and config)
        name = getattr(identifier, "keras_name", type(identifier).__name__)
        if _CAMEL.get(name, name) in _FACTORIES:
            return _drawer({"class_name": name, "config": dict(identifier.get_config())})
        return _keras_callable(identifier)
    if callable(identifier):
        return identifier if _takes_a_generator(identifier) else _keras_callable(identifier)
    config: dict = {}
    name = identifier
    if isinstance(identifier, dict):
        name = identifier.get("class_name")
        raw = identifier.get("config") or {}
        if not isinstance(raw, dict):
            raise UnsupportedKerasFeature(f"initializer {identifier!r:.80}: its config is not a dict")
        # (STFT's window=None and scaling=None mean no window and no scaling, not the defaults)
        keeps_none = isinstance(name, str) and _CAMEL.get(name, name) == "stft"
        config = {k: _value(v) for k, v in raw.items() if k != "seed" and (v is not None or keeps_none)}
    if not isinstance(name, str):
        raise UnsupportedKerasFeature(f"initializer {identifier!r:.80} is not supported: expected a name or a config")
    name = _CAMEL.get(name, name)
    if name not in _FACTORIES:
        raise UnsupportedKerasFeature(
            f"initializer {identifier!r} is not supported; supported: {', '.join(sorted(_FACTORIES))}"
        )
    try:
        init = _FACTORIES[name](**config)
    except (TypeError, ValueError) as exc:
        raise UnsupportedKerasFeature(f"initializer {name!r} with options {config} is not supported: {exc}") from None
    seed = (identifier.get("config") or {}).get("seed") if isinstance(identifier, dict) else None
    return init if seed is None else _seeded(init, seed)


def _seeded(init: Initializer, seed) -> Initializer:
    """``init`` drawing from a generator of ``seed`` at every call, as Keras's initializer of an integer seed (a
    layer given ``GlorotUniform(seed=1)`` gets the same weights in every run)."""
    from .random import make_rng

    make_rng(seed)  # (the seed checked now)

    def seeded(shape, dtype, rng):
        return init(shape, dtype, make_rng(seed))

    return seeded

