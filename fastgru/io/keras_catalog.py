"""Names of Keras's layer classes that the loaders need beside the registry: the Keras layers fastgru does not
implement (named in their refusal, so users know it is deliberate) and the classes whose configs carry another
name than the Python class their weight paths are named after."""

from __future__ import annotations

import re

#: Keras classes fastgru will have later or never; named in the refusal so users know it is deliberate
_KNOWN_UNSUPPORTED = {
    "ConvLSTM3D", "Lambda", "SpectralNormalization",
    "StackedRNNCells", "ReversibleEmbedding", "TFSMLayer", "JaxLayer", "FlaxLayer", "TorchModuleWrapper",
    # Keras 2's own (tf_keras files)
    "ThresholdedReLU", "LocallyConnected1D", "LocallyConnected2D", "ConvRNN2D", "AbstractRNNCell",
    # preprocessing: text, lookups and encodings, audio, images and their augmentation
    "HashedCrossing",
    "MelSpectrogram", "Pipeline", "AugMix",
    "AutoContrast", "ContrastLimitedAdaptiveHistogramEqualization", "CutMix", "Equalization", "MaxNumBoundingBoxes",
    "MixUp", "RandAugment", "RandomColorDegeneration", "RandomColorJitter",
    "RandomCrop", "RandomElasticTransform", "RandomErasing", "RandomGaussianBlur", "RandomGrayscale",
    "RandomHue", "RandomInvert", "RandomPerspective", "RandomPosterization", "RandomSaturation",
    "RandomSharpness", "RandomShear", "Solarization",
}


#: Keras classes whose config names another (exported) class name than the Python class its weight paths are named
#: after (``layers/<snake case of the class>``)
_PYTHON_CLASS = {"GroupQueryAttention": "GroupedQueryAttention"}


def weights_key(class_name: str) -> str:
    """The key of a layer of Keras class ``class_name`` in a .keras file's weight paths (before ``_n`` suffixes)."""
    return snake_case(_PYTHON_CLASS.get(class_name, class_name))


def snake_case(name: str) -> str:
    """Keras's ``naming.to_snake_case`` (the rule behind weight paths in .keras files)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()
