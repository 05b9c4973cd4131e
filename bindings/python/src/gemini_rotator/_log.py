"""The library's log events (key cooldowns, disabled keys, paid fallbacks, exhaustion, retries),
delivered to a Python callable or to the :mod:`logging` module instead of stderr.

How the callback is wired:
- One ctypes callback object, ``_CALLBACK``, is made at import and kept in this module for the
  life of the process, so the C library can never call a freed trampoline. The library gets it
  with a NULL ``user_data``; the Python handler lives only in the module global ``_handler``.
- The trampoline never lets an exception reach C: anything the handler raises is reported on
  the ``gemini_rotator`` logger and the event is dropped.
- ``gr_set_log_callback`` returns only once no call of the previous callback is running (and
  ctypes releases the GIL while it waits), so :func:`set_log_handler` returns only when the
  previous handler is done for good.
- Fork: while a process forks, the library's callback is swapped for one that needs no GIL
  (see below), so that no thread of the parent is stuck inside the library's logging path in
  the child; the child gets fresh locks and keeps the handler: events of the child reach it.
- At exit the callback is uninstalled, so that a daemon thread still in the library never calls
  into a finalizing interpreter.
"""

from __future__ import annotations

import atexit
import ctypes
import json
import logging
import os
import sys
import threading
from typing import Any, Callable, Dict, Optional, Union

from . import _ffi
from ._errors import check as check_status

#: The :mod:`logging` logger that :func:`enable_logging` routes events to, and on which a
#: failing handler is reported.
LOGGER_NAME = "gemini_rotator"

#: One event: ``{"level": "warn", "event": "key_cooldown", "key": "<fingerprint>", ...}``.
LogEvent = Dict[str, Any]
LogHandler = Callable[[LogEvent], Any]
LogLevel = Union[str, int, None]

_logger = logging.getLogger(LOGGER_NAME)

_NAMES = {"off": 0, "none": 0, "error": 1, "warn": 2, "warning": 2, "info": 3, "debug": 4}
_LOGGING_LEVELS = {
    "error": logging.ERROR,
    "warn": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
}


def _library_level(level: LogLevel) -> int:
    """The library's level (0 off .. 4 debug) for a name or a :mod:`logging` level."""
    if level is None:
        return 0
    if isinstance(level, str):
        try:
            return _NAMES[level.strip().lower()]
        except KeyError:
            raise ValueError(
                f"unknown log level {level!r}: use 'off', 'error', 'warn', 'info', 'debug' "
                "or a logging level (logging.WARNING, ...)"
            ) from None
    if isinstance(level, bool) or not isinstance(level, int):
        raise TypeError(
            f"log level must be a str, a logging level (int) or None, not {type(level).__name__}"
        )
    if level < 0:
        raise ValueError(f"log level {level} is negative")
    # A logging level L lets through records of level >= L: emit the library's events whose
    # logging level is at least L.
    if level > logging.ERROR:
        return 0  # CRITICAL and above: the library has no events that severe
    if level > logging.WARNING:
        return 1
    if level > logging.INFO:
        return 2
    if level > logging.DEBUG:
        return 3
    return 4


def set_log_level(level: LogLevel) -> None:
    """Sets which events the library emits, for the whole process (every pool): ``"off"``
    (the default; also ``None``), ``"error"``, ``"warn"``, ``"info"`` or ``"debug"``, or a
    :mod:`logging` level (``logging.INFO`` emits info, warn and error events; ``logging.NOTSET``
    everything; above ``logging.ERROR`` nothing). Pools created with ``GEMINI_ROTATOR_LOG`` set
    change it too."""
    number = _library_level(level)
    error = _ffi.ErrorPtr()
    check_status(_ffi.lib.gr_set_log_level(number, ctypes.byref(error)), error)


# The handler events go to (None: none, events go to stderr).
_handler: Optional[LogHandler] = None
# Whether the library has _CALLBACK; changed only under _setup_lock.
_installed = False
_setup_lock = threading.Lock()
# Handler calls running, per thread (threading.get_ident()): set_log_handler() from inside a
# handler would wait for itself.
_running: Dict[int, int] = {}


def _deliver(_user_data: Any, _level: int, event_json: Optional[bytes]) -> None:
    """The ctypes callback: decode the event and call the handler. Never raises."""
    handler = _handler
    if handler is None:
        return
    ident = threading.get_ident()
    _running[ident] = _running.get(ident, 0) + 1
    try:
        event = json.loads(event_json or b"{}")
        handler(event)
    except BaseException as error:  # noqa: BLE001 - nothing may propagate into C
        _report(handler, error)
    finally:
        left = _running.get(ident, 1) - 1
        if left > 0:
            _running[ident] = left
        else:
            _running.pop(ident, None)


def _report(handler: Any, error: BaseException) -> None:
    try:
        _logger.error(
            "the gemini_rotator log handler %r raised %s; the event was dropped",
            handler,
            type(error).__name__,
            exc_info=(type(error), error, error.__traceback__),
        )
    except BaseException:  # noqa: BLE001 - last resort: the logging machinery failed too
        try:
            sys.stderr.write(f"gemini_rotator: the log handler raised {error!r}\n")
        except BaseException:  # noqa: BLE001
            pass


_CALLBACK = _ffi.LogFn(_deliver)
# A NULL gr_log_fn: restores stderr.
_NO_CALLBACK = _ffi.LogFn()


def set_log_handler(handler: Optional[LogHandler]) -> None:
    """Sends the library's log events to ``handler`` instead of stderr; ``None`` restores
    stderr. Process-wide: the last call wins.

    ``handler(event)`` gets each event as a dict, such as ``{"level": "warn", "event":
    "key_cooldown", "key": "<fingerprint>", "tier": "free", "cause": "per_minute",
    "cooldown_ms": 2000}`` (keys appear by fingerprint only). Events are emitted only at or
    above the level of :func:`set_log_level` (off by default). The handler runs on the thread
    that caused the event, possibly on several at once: it must be thread-safe, should be
    quick, and must not use a pool or call ``set_log_handler`` (which raises
    :class:`RuntimeError` there). Whatever it raises is reported on the ``gemini_rotator``
    logger and never reaches the library.

    When it returns, the previous handler is not running and will not be called again.
    """
    global _handler, _installed
    if handler is not None and not callable(handler):
        raise TypeError(f"handler must be callable or None, not {type(handler).__name__}")
    if _running.get(threading.get_ident()):
        raise RuntimeError("set_log_handler() cannot be called from inside a log handler")
    with _setup_lock:
        if handler is None:
            _handler = None
            if _installed:
                # Returns once no handler call is running.
                _ffi.lib.gr_set_log_callback(_NO_CALLBACK, None)
                _installed = False
            return
        _handler = handler
        # (Re)installing waits for running calls of the previous handler to end.
        _ffi.lib.gr_set_log_callback(_CALLBACK, None)
        _installed = True


def _format(event: LogEvent) -> str:
    """``key_cooldown key=<fingerprint> cause=per_minute ...``: the event, its key, the rest."""
    parts = [str(event.get("event", "event"))]
    names = sorted(event, key=lambda name: (name != "key", name))
    for name in names:
        if name in ("level", "event"):
            continue
        value = event[name]
        text = value if isinstance(value, str) else json.dumps(value)
        if not text or any(c.isspace() or c in "\"=" for c in text):
            text = json.dumps(text)
        parts.append(f"{name}={text}")
    return " ".join(parts)


def _to_logging(event: LogEvent) -> None:
    """The handler of :func:`enable_logging`."""
    levelno = _LOGGING_LEVELS.get(str(event.get("level")), logging.INFO)
    if _logger.isEnabledFor(levelno):
        _logger.log(levelno, "%s", _format(event), extra={"gemini_rotator": event})


def enable_logging(level: LogLevel = None) -> None:
    """Routes the library's events to the :mod:`logging` logger ``"gemini_rotator"``.

    Each record's message reads like ``key_cooldown key=<fingerprint> cause=per_minute
    cooldown_ms=2000 tier=free`` (the event, its key, the other fields by name), its level is the event's (error, warning, info,
    debug), and the whole event dict is the record's ``gemini_rotator`` attribute (given in
    ``extra``). ``level`` sets :func:`set_log_level`; by default it is the logger's effective
    level now (``WARNING`` unless logging was configured), so call it after configuring
    logging, or pass the level."""
    set_log_handler(_to_logging)
    set_log_level(_logger.getEffectiveLevel() if level is None else level)


# Fork. The library holds a lock (shared) while a callback runs, and gr_set_log_callback takes it
# exclusively. A thread of the parent inside the callback at the moment of a fork (typically
# waiting for the GIL, which the forking thread holds) does not exist in the child, yet its
# share of that lock would stay taken there forever: the child's next gr_set_log_callback (a
# set_log_handler() call, or the uninstall at exit) would hang. So for the duration of the fork
# the library gets a callback that needs no GIL and returns at once (installing it waits, with
# the GIL released, for the running calls of _CALLBACK to end); _CALLBACK is put back on both
# sides afterwards. Events that other threads cause during those few instants are dropped.
#
# What remains is a window of a few instructions: a thread running the no-op callback at the
# very instant of the fork. Closing it needs the library to take its lock around fork() itself
# (pthread_atfork); this swap would still be needed then, so that the lock is not awaited
# while a callback waits for the GIL.
#
# The no-op callback is gr_free: it frees nothing when its first argument, user_data, is NULL,
# and the C calling conventions of every supported platform let a function ignore the extra
# arguments (level, event_json) of a call.
_DISCARD = _ffi.LogFn(ctypes.cast(_ffi.lib.gr_free, ctypes.c_void_p).value or 0)

# What _before_fork did: None (nothing), "locked" (took _setup_lock), "discarding" (and put
# _DISCARD in place).
_fork_state: Optional[str] = None


def _before_fork() -> None:
    global _fork_state
    _fork_state = None
    if _running.get(threading.get_ident()):
        # Forking from inside a handler: this thread holds the library's lock, and another may
        # hold _setup_lock while it waits for this very call. Touch nothing.
        return
    _setup_lock.acquire()
    _fork_state = "locked"
    if _installed:
        _ffi.lib.gr_set_log_callback(_DISCARD, None)  # the GIL is released while it waits
        _fork_state = "discarding"


def _after_fork_in_parent() -> None:
    global _fork_state
    state, _fork_state = _fork_state, None
    if state == "discarding":
        _ffi.lib.gr_set_log_callback(_CALLBACK, None)
    if state is not None:
        _setup_lock.release()


def _after_fork_in_child() -> None:
    global _setup_lock, _running, _fork_state
    state, _fork_state = _fork_state, None
    # The parent's other threads do not exist here: their handler calls never return.
    _setup_lock = threading.Lock()
    ident = threading.get_ident()
    _running = {ident: _running[ident]} if ident in _running else {}
    if state == "discarding":
        _ffi.lib.gr_set_log_callback(_CALLBACK, None)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=_after_fork_in_parent,
        after_in_child=_after_fork_in_child,
    )


@atexit.register
def _uninstall_at_exit() -> None:
    global _handler, _installed
    _handler = None  # calls from now on return at once
    if _installed:
        _installed = False
        _ffi.lib.gr_set_log_callback(_NO_CALLBACK, None)
