"""Keras 3 model attributes and methods that training and serving code reaches for, shared by ``Sequential``
and the Functional ``Model``: the variable lists under Keras's names, the metrics' names and results, the
compile configuration and the architecture as JSON."""

from __future__ import annotations

import json

import numpy as np

from .variables import VariableLists


class KerasModelAPI(VariableLists):
    """Mixed into ``Sequential`` and ``Model`` (which define ``weights``, ``trainable_weights`` and ``metrics``)."""

    #: Keras's compiled step functions: fastgru compiles none (Keras's TensorBoard callback, which writes the
    #: training graph when it has one, then skips it)
    train_function = None
    test_function = None
    predict_function = None

    @property
    def metrics_names(self) -> list[str]:
        """The names of ``model.metrics``: ``"loss"`` and the compiled metrics' (empty before compile)."""
        return [m.name for m in self.metrics]

    @property
    def losses(self) -> list:
        """Keras's ``model.losses``: the values its layers' ``add_loss`` was given in their latest call (custom
        layers, nested models), then each trainable weight's regularization penalty."""
        from .eager import eager
        from .training.regularization import weight_regularizers
        from .variables import array_of

        added = [v for layer in self._layers_and_ops for v in (getattr(layer, "losses", None) or [])]
        regs = weight_regularizers(self._layers_and_ops)
        return added + [eager(np.asarray(regs[id(array_of(w))][0](array_of(w)), np.float32))
                        for w in self.trainable_weights if id(array_of(w)) in regs]

    def reset_metrics(self) -> None:
        """Reset the loss tracker and every compiled metric (``fit``/``evaluate`` do it themselves)."""
        for m in self.metrics:
            m.reset_state()

    def get_metrics_result(self) -> dict:
        """The current value of the loss tracker and of each compiled metric, by logged name."""
        compiled = getattr(self, "_compiled", None)
        return {} if compiled is None else dict(compiled.logs())

    def get_build_config(self) -> dict | None:
        """Keras's ``get_build_config``: ``{"input_shape": ...}`` of a built single-input model, else None."""
        shape = getattr(self, "input_shape", None) if self.built else None
        return {"input_shape": tuple(shape)} if isinstance(shape, tuple) else None

    def compile_from_config(self, config: dict) -> None:
        """Keras's ``compile_from_config``: ``compile`` with what :meth:`get_compile_config` (or a ``.keras`` file's
        ``compile_config``) holds: the optimizer, loss, loss weights and metrics, as Keras configs or names."""
        if not isinstance(config, dict):
            raise TypeError(f"compile_from_config expects the dict get_compile_config gives, received "
                            f"{type(config).__name__}")
        keys = ("optimizer", "loss", "loss_weights", "metrics", "weighted_metrics")
        self.compile(**{k: config[k] for k in keys if config.get(k) is not None})

    def get_compile_config(self) -> dict | None:
        """The compile configuration Keras 3 writes into a ``.keras`` file (None before compile)."""
        from .io.keras_save import keras3_compile_config

        return keras3_compile_config(self)

    def to_json(self, **kwargs) -> str:
        """The architecture as Keras 3's JSON (``keras.models.model_from_json`` reads it); ``kwargs`` go to
        ``json.dumps``. Weights are not included: ``save_weights``, or ``save`` for both."""
        from .io import functional_save, keras_functional, keras_save

        entry = (functional_save.functional_config(self) if keras_functional.uses_graph(self)
                 else keras_save.keras3_model_config(self))
        return json.dumps(entry, **kwargs)

    # ---- training (fastgru.training.trainer; Keras's arguments and defaults) ------------------------
    def fit(self, x=None, y=None, batch_size=None, epochs: int = 1, verbose="auto", callbacks=None,
            validation_split: float = 0.0, validation_data=None, shuffle: bool = True, class_weight=None,
            sample_weight=None, initial_epoch: int = 0, validation_batch_size=None, validation_freq=1,
            steps_per_epoch=None, validation_steps=None):
        """Train for ``epochs`` epochs as Keras's ``fit``; returns the History (``history.history["loss"]``,
        ``val_*`` entries with validation data; a Functional model's ``<output>_loss`` and
        ``<output>_<metric>`` with several outputs). ``x`` is one array, or for a Functional model a list or a
        dict keyed by input name; ``y`` one array per output (a list, or a dict keyed by output name).
        ``steps_per_epoch`` batches an epoch are drawn from a pass over the data that goes on where the last
        epoch stopped; ``validation_steps``: each validation covers the first that many batches (as Keras)."""
        from .training import streams, trainer

        reader = sizes = None
        one_pass = False  # (a generator's batches: read once, as Keras reads them)
        if streams.is_stream(x):  # (a dataset, PyDataset or generator: its batches as arrays, their size kept)
            streams.check_no_targets(y, sample_weight, "fit")
            if validation_split:
                raise ValueError("fit: `validation_split` is only supported for arrays, as in Keras; give the "
                                 "validation stream as validation_data")
            if streams.rereadable(x):  # (read anew each epoch, or each pass with steps_per_epoch, as in Keras)
                reader = streams.EpochReader(x, shuffle, passes=steps_per_epoch is not None)
                reader.begin_epoch()
                x, y, sample_weight, sizes = reader.read()
                batch_size = sizes[0]
            else:
                streams.warn_unshuffled(x, shuffle)
                one_pass = True
                runs = max((1 if epochs is None else epochs) - (initial_epoch or 0), 1)
                x, y, sample_weight, batch_size = streams.collect(
                    x, "fit", None if steps_per_epoch is None else steps_per_epoch * runs)
            shuffle = False  # (as Keras: a stream is read in its own order)
        if validation_data is not None and streams.is_stream(validation_data):
            xv, yv, swv, size = streams.collect(validation_data, "fit's validation_data", validation_steps)
            validation_data, validation_batch_size = (xv, yv) + (() if swv is None else (swv,)), size
        return trainer.fit(self, x, y, batch_size, epochs, verbose, callbacks, validation_split, validation_data,
                           shuffle, class_weight, sample_weight, initial_epoch, validation_batch_size, validation_freq,
                           steps_per_epoch, validation_steps, _reader=reader, _sizes=sizes, _one_pass=one_pass)

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, return_dict: bool = False):
        """The loss, or ``[loss, *output losses, *metrics]`` in Keras's order (a dict with ``return_dict``),
        over ``x`` or, with ``steps``, its first ``steps`` batches."""
        from .training import streams, trainer

        if streams.is_stream(x):
            streams.check_no_targets(y, sample_weight, "evaluate")
            x, y, sample_weight, batch_size = streams.collect(x, "evaluate", steps, to_end=True)
        return trainer.evaluate(self, x, y, batch_size, verbose, sample_weight, steps, callbacks, return_dict)

    def predict_step(self, data):
        """Keras's ``predict_step``: the model's output for one batch, ``data`` being ``x`` or ``(x,)``, ``(x, y)``,
        ``(x, y, sample_weight)`` (the targets unused)."""
        x = data[0] if isinstance(data, tuple) and 1 <= len(data) <= 3 else data
        return self(x, training=False)

    def compute_output_shape(self, input_shape):
        """Keras's ``compute_output_shape``: the output shape (a list for several outputs) for inputs of
        ``input_shape`` (a shape, or a list of shapes for several inputs), their batch size kept; shapes the
        model does not take refused."""
        from .nested_shapes import Shaped, nested_model_shapes

        listed = isinstance(input_shape, list) and bool(input_shape) and isinstance(input_shape[0], (list, tuple))
        shapes = [tuple(s) for s in input_shape] if listed else [tuple(input_shape)]
        if not all(all(d is None or (isinstance(d, (int, np.integer)) and d >= 0) for d in s) for s in shapes):
            raise ValueError(f"compute_output_shape of model {self.name!r}: a shape holds sizes (whole numbers) or "
                             f"None, received {input_shape!r}")
        out = nested_model_shapes(self, [Shaped(s) for s in shapes], listed, f"model {self.name!r}")
        batch = shapes[0][0] if shapes[0] else None
        out = [(batch,) + tuple(s[1:]) if s else tuple(s) for s in out]
        return out[0] if len(out) == 1 else out

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict: bool = False):
        """One optimizer step on one batch; returns the loss (and metrics) computed before the update."""
        from .training import trainer

        return trainer.train_on_batch(self, x, y, sample_weight, class_weight, return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict: bool = False):
        """Loss (and metrics) of one batch, without training."""
        from .training import trainer

        return trainer.test_on_batch(self, x, y, sample_weight, return_dict)

    # ---- files (fastgru.io) ------------------------------------------------------------------------
    def save(self, filepath, overwrite: bool = True, zipped=None, **kwargs) -> None:
        """Write a Keras 3 ``.keras`` file that ``keras.models.load_model`` opens (``overwrite=False``: refuse
        an existing file, FileExistsError). Keras's other arguments: ``include_optimizer`` and a ``save_format``
        the path agrees with change nothing for a ``.keras`` file (as in Keras 3); ``zipped=False`` (a
        directory) is not supported; anything else is refused as Keras refuses it."""
        from .errors import UnsupportedKerasFeature
        from .io import save_model
        from .io.atomic import refuse_existing

        # (Keras 3 writes the optimizer into a .keras file regardless; a legacy .h5 file then has no training config)
        include_optimizer = kwargs.pop("include_optimizer", True)
        if kwargs.pop("save_format", None) and not str(filepath).endswith((".keras", ".h5", ".hdf5")):
            raise ValueError("The `save_format` argument is deprecated in Keras 3: pass a file path ending in "
                             f".keras instead. Received: filepath={filepath}")
        if kwargs:
            raise ValueError(f"The following argument(s) are not supported: {sorted(kwargs)}")
        if zipped is not None and not zipped:
            raise UnsupportedKerasFeature("save(zipped=False), an unzipped model directory, is not supported: "
                                          "fastgru writes .keras zip archives")
        refuse_existing(filepath, overwrite)
        save_model(self, filepath, include_optimizer=bool(include_optimizer))

    def save_weights(self, filepath, overwrite: bool = True, max_shard_size=None) -> None:
        """Write the weights as Keras 3's ``.weights.h5``, or with ``max_shard_size`` (GB) as Keras's sharded
        ``.weights.json`` map and ``<name>_00000.weights.h5``... shards beside it (``overwrite`` as in
        :meth:`save`)."""
        from .io import save_weights
        from .io.atomic import refuse_existing

        refuse_existing(filepath, overwrite)
        save_weights(self, filepath, max_shard_size)

    def load_weights(self, filepath, skip_mismatch: bool = False, **kwargs) -> None:
        """Load a Keras 3 ``.weights.h5`` (or sharded ``.weights.json``), a ``.keras`` file's weights or a legacy
        Keras 2 ``.h5`` weights file: every weight must fit, or nothing changes. As Keras's: ``skip_mismatch=True``
        leaves a layer whose weights in the file do not fit as it is, with a warning (a legacy ``.h5``: each
        weight of another shape); ``by_name=True`` (legacy ``.h5``) pairs the file's layers with the model's by
        name; ``objects_to_skip`` (``.weights.h5``) lists layers to leave alone."""
        from .io import load_options, load_weights

        load_weights(self, filepath, load_options.parse(filepath, skip_mismatch, kwargs))


def pick_layer(layers: list, name, index, model_name: str):
    """Keras's ``get_layer(name=None, index=None)``: by name or by index, one of them."""
    if name is not None and index is not None:
        raise ValueError(f"Model {model_name!r}: provide only a layer name or a layer index, received name={name!r} "
                         f"and index={index!r}")
    if index is not None:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"Model {model_name!r}: a layer index must be an integer, received {index!r}")
        if not -len(layers) <= index < len(layers):
            raise ValueError(f"Model {model_name!r} was asked for layer index {index}, but it has {len(layers)} "
                             "layers")
        return layers[index]
    if name is None:
        raise ValueError(f"Model {model_name!r}: provide either a layer name or a layer index")
    for layer in layers:
        if layer.name == name:
            return layer
    raise ValueError(f"No such layer: {name!r}; layers are {[l.name for l in layers]}")
