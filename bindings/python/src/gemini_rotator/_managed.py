"""A Python object that owns one C handle: ``close()``, context manager, ``__del__``.

Rules it enforces:
- The handle is freed exactly once, by ``close()`` (idempotent), by ``__exit__``, or by
  ``__del__`` as a safety net.
- It is never freed while a call on it runs: calls borrow the handle, and a ``close()`` that
  comes while calls are in flight only marks the object closed; the last call to return frees
  the handle. (An async call that was cancelled keeps running in its worker thread; closing the
  pool then is safe.)
- It is freed only in the process that created it. A child made by ``os.fork()`` (or
  ``multiprocessing`` with the ``fork`` start method) holds a copy of the parent's object: it may
  use it (the library rebuilds what does not survive a fork), but its ``close()``/``__del__``
  only forget the copy. Freeing it there could touch state that threads of the parent, which do
  not exist in the child, were in the middle of using, or shared state the parent still relies
  on; the few bytes a child leaves behind go away with the child.
"""

from __future__ import annotations

import os
import threading
import weakref
from contextlib import contextmanager
from typing import Any, Callable, ClassVar, Generic, Iterator, Optional, TypeVar

from ._errors import PoolClosedError

P = TypeVar("P")


class Managed(Generic[P]):
    """Base class for an object owning one C pointer of type ``P``.

    Subclasses set ``_free`` (the C destructor) and call ``_adopt(ptr)`` once the C constructor
    succeeded; calls on the handle go through ``with self._borrow() as ptr:``.
    """

    #: The C function that frees the handle.
    _free: ClassVar[Callable[[Any], None]]

    # Every live handle of this process, so that a forked child can reset their locks.
    _live: ClassVar["weakref.WeakSet[Managed[Any]]"] = weakref.WeakSet()

    _ptr: Optional[P] = None
    _closed: bool = True

    def _adopt(self, ptr: P) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._owner_pid = os.getpid()
        # Bound now: during interpreter shutdown __del__ may run after module globals are gone.
        self._free_fn = type(self)._free
        self._ptr = ptr
        self._closed = False
        Managed._live.add(self)

    @property
    def closed(self) -> bool:
        """True once ``close()`` was called (the handle may still be in use by running calls)."""
        return self._closed

    @contextmanager
    def _borrow(self) -> Iterator[P]:
        """The live pointer, for the duration of one C call."""
        with self._lock:
            if self._closed or self._ptr is None:
                raise PoolClosedError(f"this {type(self).__name__} is closed")
            self._users += 1
            ptr = self._ptr
        try:
            yield ptr
        finally:
            with self._lock:
                self._users -= 1
                doomed = self._take_if_unused()
            self._release(doomed)

    def close(self) -> None:
        """Releases the C resources. Safe to call more than once; calls running on other threads
        finish first (the last one frees the handle)."""
        lock = getattr(self, "_lock", None)
        if lock is None:  # The constructor failed before there was a handle.
            return
        with lock:
            self._closed = True
            doomed = self._take_if_unused()
        self._release(doomed)

    def _take_if_unused(self) -> Optional[P]:
        # Called with the lock held: hands over the pointer to free, if it is time.
        if self._closed and self._users == 0 and self._ptr is not None:
            ptr, self._ptr = self._ptr, None
            return ptr
        return None

    def _release(self, ptr: Optional[P]) -> None:
        if ptr is not None and self._owner_pid == os.getpid():
            self._free_fn(ptr)
        # In a forked child the pointer is dropped without freeing: see the module docstring.

    def __enter__(self: "M") -> "M":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - a finalizer must not raise (interpreter shutdown)
            pass

    def __getstate__(self) -> Any:
        raise TypeError(
            f"a {type(self).__name__} cannot be pickled or sent to another process: "
            "create one in each process (e.g. KeyPool.from_env() in a worker initializer)"
        )

    @classmethod
    def _after_fork_in_child(cls) -> None:
        # Threads of the parent do not exist here: the calls they had in flight will never
        # return, and a lock one of them held would stay held forever.
        for handle in list(cls._live):
            handle._lock = threading.Lock()
            handle._users = 0


M = TypeVar("M", bound=Managed[Any])

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=Managed._after_fork_in_child)
