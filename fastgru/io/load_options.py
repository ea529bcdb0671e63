"""``load_weights``'s options, as Keras 3's: ``skip_mismatch`` (a layer whose weights in the file do not fit is
left as it is, with a warning), ``by_name`` (a legacy ``.h5`` file's layers paired with the model's by name) and
``objects_to_skip`` (layers left as they are). Which file kinds take which option follows Keras's rule, by the
file's name; what is read stays checked as always (a refusal under ``skip_mismatch`` is a warning instead)."""

from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass

from ..errors import ModelFileError


@dataclass(frozen=True)
class LoadOptions:
    skip_mismatch: bool = False
    by_name: bool = False
    skipped: frozenset = frozenset()  # ids of the layers (and their sublayers) not to load

    def skips(self, layer) -> bool:
        return id(layer) in self.skipped

    @contextmanager
    def layer(self, label: str):
        """Loading one layer: with ``skip_mismatch`` its refusal (a ModelFileError: missing, wrong count or
        shapes) is a warning and the layer keeps its weights, as Keras's ``load_weights(skip_mismatch=True)``."""
        try:
            yield
        except ModelFileError as exc:
            if not self.skip_mismatch:
                raise
            warnings.warn(f"load_weights(skip_mismatch=True): skipping the weights of {label}, which do not fit "
                          f"({exc})", stacklevel=5)


STRICT = LoadOptions()


def _sublayer_ids(obj, seen: set) -> None:
    if obj is None or id(obj) in seen:
        return
    seen.add(id(obj))
    for inner in list(getattr(obj, "layers", None) or []) + [getattr(obj, a, None) for a in
                                                             ("layer", "forward_layer", "backward_layer", "cell")]:
        if inner is not None and hasattr(inner, "weights"):
            _sublayer_ids(inner, seen)


def parse(filepath, skip_mismatch, kwargs: dict) -> LoadOptions:
    """The options of ``load_weights(filepath, skip_mismatch, **kwargs)``, refused as Keras refuses them."""
    kwargs = dict(kwargs)
    objects_to_skip = kwargs.pop("objects_to_skip", None)
    by_name = kwargs.pop("by_name", None)
    if kwargs:
        raise ValueError(f"Invalid keyword arguments: {kwargs}")
    name = os.fspath(filepath) if isinstance(filepath, (str, os.PathLike)) else str(filepath)
    v3_weights = name.endswith((".weights.h5", ".weights.json"))
    legacy = not v3_weights and name.endswith((".h5", ".hdf5"))
    if by_name is not None and not legacy:
        raise ValueError(f"`by_name` only supports loading legacy '.h5' or '.hdf5' files. Received: {name}")
    if objects_to_skip is not None and not v3_weights:
        raise ValueError(f"`objects_to_skip` only supports loading '.weights.h5' files. Received: {name}")
    if objects_to_skip is not None and not isinstance(objects_to_skip, (list, tuple)):
        raise TypeError(f"objects_to_skip must be a list of layers, received {type(objects_to_skip).__name__}")
    skipped: set = set()
    for obj in objects_to_skip or []:
        if not hasattr(obj, "weights"):
            raise TypeError(f"objects_to_skip holds {obj!r}, which is not a layer or a model")
        _sublayer_ids(obj, skipped)
    return LoadOptions(bool(skip_mismatch), bool(by_name), frozenset(skipped))
