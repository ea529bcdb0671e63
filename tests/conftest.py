"""Shared test fixtures. Keras-dependent tests use the ``keras`` fixture, which skips cleanly
when keras (with TensorFlow) is not installed; CI installs both, so they run there."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# TensorFlow (the Keras the tests compare against) on one thread: under ``pytest -n 2`` on two cores its thread pools
# only contend with the other worker
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
# kernels split even tiny batches over the threads, so the multi-chunk path is what tests exercise
os.environ.setdefault("FASTGRU_MIN_CHUNK_WORK", "0")
sys.path.insert(0, os.path.dirname(__file__))  # for tests/reference.py


@pytest.fixture(scope="session")
def keras():
    """The keras module (Keras 3 on TensorFlow), or a clean skip when it is not installed."""
    return pytest.importorskip("keras")


#: Keras's side of the comparisons runs eagerly (``tf.config.run_functions_eagerly``): tracing a graph for each
#: model's ``fit``/``evaluate``/``predict`` took about half of the suite's time, and eager Keras gives the same
#: numbers to the tests' tolerances in all but a few tests. Those (``@pytest.mark.keras_graph``: multi-output
#: losses, tf_keras's Nadam, schedule-free AdamW, ...) compare against Keras's compiled graph, which is what a
#: user's ``fit`` runs; ``FASTGRU_TEST_KERAS_GRAPH=1`` runs every test against the graph.
_KERAS_GRAPH_ALWAYS = os.environ.get("FASTGRU_TEST_KERAS_GRAPH", "") not in ("", "0")


@pytest.fixture(autouse=True)
def _keras_execution(request):
    tf = sys.modules.get("tensorflow")  # only once a test has imported it: the core suite needs no TensorFlow
    if tf is not None:
        graph = _KERAS_GRAPH_ALWAYS or request.node.get_closest_marker("keras_graph") is not None
        tf.config.run_functions_eagerly(not graph)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


#: tests that compile kernels in a child process (the other CPU kind's layout, a minute or more on a cold machine;
#: the warm-up, into the suite's own cache, which the workers then load from), then the other tests of 10 s or more (a Keras training run, a Dask cluster, live SavedModels): run first, so that under
#: ``pytest -n 2`` the two workers share them at the start while the rest fill in, not one of them at the end
_SLOW_FIRST = ("test_the_other_cpu_kinds_tile_layout", "test_warmup_fills_the_cache_for_later_processes",
               "test_ocr_crnn_trained_with_ctc_matches_keras", "test_predict_equals_single_process",
               "test_predict_float64_and_token_inputs",
               "test_live_more_saved_models_stateful_float64_frozen_backward_layer_nested_functional",
               "test_live_tf_keras_saved_models_load_number_for_number", "test_a_keras_vae_file_loads_predicts_and_trains",
               "test_vanishing_gradients_flush_to_zero_and_leave_the_callers_mode")


def pytest_collection_modifyitems(config, items):
    # (by the function's name, parametrized cases included; stable: the rest keep their order)
    items.sort(key=lambda item: getattr(item, "originalname", item.name) not in _SLOW_FIRST)
