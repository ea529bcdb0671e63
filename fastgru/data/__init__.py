"""The bundled data files (``*.npz``); load them with :func:`fastgru.datasets.load`."""
