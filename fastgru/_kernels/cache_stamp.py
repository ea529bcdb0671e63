"""Numba's on-disk cache keys a compiled kernel on its own source file alone, but a kernel's compiled code holds the
functions it calls from the other kernel modules too: a kernel cached before one of those changed (a new
activation in ``activations.py``, say) would load unchanged, and run the old callee. Here every kernel's cache
entry is keyed on all of ``fastgru/_kernels``' sources as well, so that a change to any kernel module compiles the
kernels again. (Installed releases rewrite every file anyway; this is for source checkouts and editable installs.)

Numba picks a cache locator per function from ``CacheImpl._locator_classes``; ``install`` puts, in front of its
own, locators that take the functions of ``fastgru._kernels`` and add the sources' digest to their source stamp.
Nothing is read or compiled at import: the digest is taken when Numba first asks for a stamp."""

from __future__ import annotations

import functools
import hashlib
import os

PACKAGE = __name__.rsplit(".", 1)[0]  # fastgru._kernels
_DIR = os.path.dirname(os.path.abspath(__file__))


@functools.lru_cache(maxsize=1)
def sources_digest() -> str:
    """SHA-256 over the names and contents of the kernel package's ``.py`` files, in name order."""
    digest = hashlib.sha256()
    try:
        for name in sorted(os.listdir(_DIR)):
            if name.endswith(".py"):
                with open(os.path.join(_DIR, name), "rb") as f:
                    digest.update(name.encode() + b"\0" + f.read() + b"\0")
    except OSError:  # (sources not on a file system, e.g. a zip: each kernel's own stamp, as Numba's)
        return ""
    return digest.hexdigest()


def _keyed_on_kernel_sources(base):
    class KernelSourcesLocator(base):
        @classmethod
        def from_function(cls, py_func, py_file):
            if not str(getattr(py_func, "__module__", "")).startswith(PACKAGE + "."):
                return None  # (anything else: Numba's own locators)
            return super().from_function(py_func, py_file)

        def get_source_stamp(self):
            return super().get_source_stamp(), sources_digest()

    KernelSourcesLocator.__name__ = KernelSourcesLocator.__qualname__ = f"KernelSources{base.__name__}"
    return KernelSourcesLocator


def install() -> bool:
    """Put the kernel-sources locators in front of Numba's (once); False where this Numba has no such list."""
    try:
        from numba.core import caching

        impl = getattr(caching, "CacheImpl", None) or caching._CacheImpl  # (its name before Numba 0.61)
        classes = impl._locator_classes
        bases = [caching.UserProvidedCacheLocator, caching.InTreeCacheLocator, caching.UserWideCacheLocator]
    except (ImportError, AttributeError):  # (another Numba: its own keys, as before)
        return False
    if not any(getattr(c, "_fastgru_kernel_sources", False) for c in classes):
        ours = [_keyed_on_kernel_sources(base) for base in bases]
        for c in ours:
            c._fastgru_kernel_sources = True
        classes[:0] = ours
    return True
