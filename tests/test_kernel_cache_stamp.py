"""Every kernel's entry in Numba's on-disk cache is keyed on all of ``fastgru/_kernels``' sources
(``_kernels/cache_stamp.py``): a kernel cached before a change to a function it calls from another kernel module
is compiled again, not loaded with the old callee; functions outside the kernels keep Numba's own keys."""

from __future__ import annotations

import shutil

import numba

from fastgru._kernels import activations, cache_stamp, gru, packed


def test_the_kernels_caches_are_keyed_on_every_kernel_source():
    assert cache_stamp.install()  # (this Numba has the list of locators; installing again adds nothing)
    for kernel in (gru.gru_forward_slice, activations.activate_inplace, packed.operand):
        locator = kernel._cache._impl._locator
        assert type(locator).__name__.startswith("KernelSources")
        own, digest = locator.get_source_stamp()
        assert digest == cache_stamp.sources_digest() and len(digest) == 64 and own


def test_a_function_outside_the_kernels_keeps_numbas_key():
    @numba.njit(cache=True)
    def elsewhere(x):  # pragma: no cover - never compiled: only its cache's locator is read
        return x

    locator = elsewhere._cache._impl._locator
    assert not type(locator).__name__.startswith("KernelSources")
    assert not isinstance(locator.get_source_stamp(), tuple)


def test_the_digest_changes_with_any_kernel_module(tmp_path, monkeypatch):
    copy = tmp_path / "_kernels"
    shutil.copytree(cache_stamp._DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(cache_stamp, "_DIR", str(copy))
    cache_stamp.sources_digest.cache_clear()
    try:
        before = cache_stamp.sources_digest()
        (copy / "activations.py").write_text((copy / "activations.py").read_text() + "\n# a change\n")
        cache_stamp.sources_digest.cache_clear()
        assert cache_stamp.sources_digest() != before
        (copy / "activations.py").unlink()
        cache_stamp.sources_digest.cache_clear()
        assert cache_stamp.sources_digest() not in (before, "")
    finally:
        monkeypatch.undo()
        cache_stamp.sources_digest.cache_clear()
