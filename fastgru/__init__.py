"""fastgru: fast CPU GRU and LSTM inference and training with Numba kernels and a Keras-shaped API."""

from . import activations, initializers, ops, random
from ._threads import get_batch_invariant, get_num_threads, set_batch_invariant, set_num_threads
from .errors import ModelFileError, UnsupportedKerasFeature
from .random import set_random_seed

__version__ = "0.1.0"

__all__ = [
    "ModelFileError",
    "UnsupportedKerasFeature",
    "activations",
    "get_batch_invariant",
    "get_num_threads",
    "initializers",
    "ops",
    "set_batch_invariant",
    "set_num_threads",
    "set_random_seed",
]

from . import (
    backend,  # noqa: E402
    constraints,  # noqa: E402
    datasets,  # noqa: E402
    layers,  # noqa: E402
    models,  # noqa: E402
    regularizers,  # noqa: E402
    saving,  # noqa: E402
    utils,  # noqa: E402
)
from .functional import Input, KerasTensor, Model  # noqa: E402
from .io import from_keras, load_model  # noqa: E402
from .models import Sequential  # noqa: E402
from .op_extras import install as _install_more_keras_ops  # noqa: E402
from .op_functions import install as _install_keras_ops  # noqa: E402
from .random_ops import install as _install_keras_random  # noqa: E402
from .training import callbacks, losses, metrics, optimizers  # noqa: E402

_install_keras_ops(ops)  # fastgru.ops.mean, .concatenate, ...: Keras's ``keras.ops`` functions (op_functions.py)
_install_more_keras_ops(ops)  # fastgru.ops.pad, .layer_normalization, ..., ops.nn (op_extras.py)
_install_keras_random(random)  # fastgru.random.normal, .SeedGenerator, ...: Keras's ``keras.random`` (random_ops.py)

__all__ += ["Input", "KerasTensor", "Model", "Sequential", "backend", "callbacks", "constraints", "datasets",
            "from_keras", "layers", "load_model", "losses", "metrics", "models", "optimizers", "regularizers", "saving",
            "utils"]
