"""A readers-writer lock for a layer's weights: calls read them together, ``set_weights`` writes them alone
(``fastgru.layers.base.weights_lock`` gives each layer or model its own)."""

from __future__ import annotations

import threading


class SharedLock:
    """A readers-writer lock: any number of *shared* holders (calls that read the weights) or one
    *exclusive* holder (``set_weights``). A waiting exclusive holder goes first: new shared holders
    wait for it, so a stream of calls cannot starve ``set_weights``. Not reentrant.
    ``with lock.shared:`` / ``with lock.exclusive:`` (a lock acquisition and a counter each way)."""

    __slots__ = ("_cond", "_exclusive", "_lock", "_shared", "_waiting", "exclusive", "shared")

    def __init__(self):
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._shared = 0
        self._exclusive = False
        self._waiting = 0
        self.shared = _Shared(self)
        self.exclusive = _Exclusive(self)


class _Shared:
    __slots__ = ("_l",)

    def __init__(self, lock: SharedLock):
        self._l = lock

    def __enter__(self) -> None:
        lock = self._l
        with lock._lock:
            while lock._exclusive or lock._waiting:
                lock._cond.wait()
            lock._shared += 1

    def __exit__(self, *exc) -> None:
        lock = self._l
        with lock._lock:
            lock._shared -= 1
            if not lock._shared and lock._waiting:
                lock._cond.notify_all()


class _Exclusive:
    __slots__ = ("_l",)

    def __init__(self, lock: SharedLock):
        self._l = lock

    def __enter__(self) -> None:
        lock = self._l
        with lock._lock:
            lock._waiting += 1
            try:
                while lock._exclusive or lock._shared:
                    lock._cond.wait()
            finally:
                lock._waiting -= 1
            lock._exclusive = True

    def __exit__(self, *exc) -> None:
        lock = self._l
        with lock._lock:
            lock._exclusive = False
            lock._cond.notify_all()
