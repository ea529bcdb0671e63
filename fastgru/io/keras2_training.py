"""tf_keras's (Keras 2's) training config, as .h5 files and SavedModel directories store it, in the form
fastgru's ``compile`` takes (``io.restore_compile``)."""

from __future__ import annotations

from ..training.optimizer_base import LEGACY_KEY

#: the functions tf_keras stores for a metric compiled as "accuracy", and the metric classes computing them
_ACCURACY_CLASSES = {"binary_accuracy": "BinaryAccuracy", "categorical_accuracy": "CategoricalAccuracy",
                     "sparse_categorical_accuracy": "SparseCategoricalAccuracy"}


def training_config(config: dict, output_names=None) -> dict:
    """Keras 2's training config in the form fastgru's compile takes: tf_keras 2.11+ registers its
    optimizers as ``Custom>Adam`` (the package "Custom"), named ``Adam`` here; a metric given by name
    (``"accuracy"``, ``"mae"``) is stored as ``MeanMetricWrapper(name=..., fn=...)``, given by its name
    again (as Keras reports it; "accuracy" as the accuracy function tf_keras stored, under that name),
    without the ``<output>_`` prefix tf_keras gives an output's metric (a list
    of lists, one per output in ``output_names``' order, or a dict keyed by output name); the same for
    the weighted metrics. An optimizer_v2 config (TensorFlow 2.10 and before, or ``tf_keras.optimizers.legacy``:
    a ``decay`` and no ``use_ema``) is marked, so that the optimizer follows its rules
    (``training.optimizer_base.LEGACY_KEY``)."""
    # (an .h5 file's training_config names it optimizer_config; a tf_keras .keras file's compile_config optimizer)
    key = "optimizer_config" if "optimizer_config" in config else "optimizer"
    optimizer = config.get(key)
    if isinstance(optimizer, dict) and isinstance(optimizer.get("class_name"), str) \
            and optimizer["class_name"].startswith("Custom>"):
        config = dict(config, **{key: dict(optimizer, class_name=optimizer["class_name"][len("Custom>"):])})
    optimizer = config.get(key)
    inner = optimizer.get("config") if isinstance(optimizer, dict) else None
    if isinstance(inner, dict) and "decay" in inner and "use_ema" not in inner:
        # TensorFlow's optimizer_v2 (TF <= 2.10, or tf_keras.optimizers.legacy): its own rules and rate decay
        config = dict(config, **{key: dict(optimizer, config={**inner, LEGACY_KEY: True})})

    def metric(m, output=None, weighted=False):
        if isinstance(m, list):
            return [metric(v, output, weighted) for v in m]
        if isinstance(m, dict) and m.get("class_name") == "MeanMetricWrapper" and isinstance(m.get("config"), dict):
            name, fn = m["config"].get("name"), m["config"].get("fn")
            if isinstance(name, str) and output is not None and name.startswith(f"{output}_"):
                name = name[len(output) + 1:]  # (tf_keras names an output's metric "<output>_mae"; fastgru adds it)
            if isinstance(name, str) and weighted and name.startswith("weighted_"):
                name = name[len("weighted_"):]  # (tf_keras's rename of a weighted metric named as a metric is)
            if name in ("accuracy", "acc") and fn in _ACCURACY_CLASSES:
                # the accuracy tf_keras resolved when it compiled, from the shapes it saw then (or its guess,
                # categorical_accuracy, when the model was saved untrained): its loaded model computes that one
                return {"class_name": _ACCURACY_CLASSES[fn], "config": {"name": name}}
            return name if isinstance(name, str) else fn if isinstance(fn, str) else m
        if isinstance(m, dict) and isinstance(m.get("config"), dict) and output is not None:
            name = m["config"].get("name")  # a metric object (AUC, Precision) of one output: named so too
            if isinstance(name, str) and name.startswith(f"{output}_"):
                return dict(m, config=dict(m["config"], name=name[len(output) + 1:]))
        return m

    names = list(output_names or [])
    for key in ("metrics", "weighted_metrics"):
        metrics, w = config.get(key), key == "weighted_metrics"
        if (isinstance(metrics, list) and len(names) > 1 and len(metrics) == len(names)
                and all(isinstance(m, list) for m in metrics)):
            config = dict(config, **{key: [metric(m, k, w) for m, k in zip(metrics, names)]})
        elif isinstance(metrics, list):
            config = dict(config, **{key: metric(metrics, None, w)})
        elif isinstance(metrics, dict) and not ("class_name" in metrics and "config" in metrics):  # per output
            config = dict(config, **{key: {k: metric(v, k, w) for k, v in metrics.items()}})
    return config
