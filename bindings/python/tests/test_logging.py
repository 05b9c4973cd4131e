"""Log events: a handler, the logging module, levels, a failing handler, and fork.

Handlers and levels are process-wide; the `logs` fixture puts the defaults back after each test.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import re
import threading
import time
from typing import Any, Dict, List

import pytest

import gemini_rotator
from gemini_rotator import (
    AllKeysRateLimitedError,
    GeminiClient,
    enable_logging,
    fingerprint,
    set_log_handler,
    set_log_level,
)

FINGERPRINT = re.compile(r"^[0-9a-f]{12}$")


@pytest.fixture
def logs():
    """A thread-safe list of events, installed as the handler; defaults restored at the end."""
    recorder = Recorder()
    yield recorder
    set_log_handler(None)
    set_log_level("off")


class Recorder:
    """Keeps every event. No lock: list.append and list() are atomic in CPython, and a lock
    held by a parent thread at a fork would stay held in the child."""

    def __init__(self) -> None:
        self.events: List[Dict[str, Any]] = []

    def __call__(self, event: Dict[str, Any]) -> None:
        self.events.append(event)

    def all(self) -> List[Dict[str, Any]]:
        return list(self.events)

    def find(self, name: str, key: str) -> Dict[str, Any]:
        found = [e for e in self.all() if e.get("event") == name and e.get("key") == key]
        assert found, f"no {name} event for {key} among {self.all()}"
        return found[0]


def cooldown_and_fallback(emulator, make_pool):
    """The free key gets a 429 (cooling down for 30 s) and the paid key serves instead."""
    free, paid = emulator.add_keys(2)
    emulator.fault(free.label, "quota_minute", count=1, retry_delay="30s")
    response = GeminiClient(make_pool([free], paid)).generate_content("cool down")
    assert response.key_fingerprint == fingerprint(paid.secret)
    return free, paid


def assert_fingerprints_only(events, *keys) -> None:
    for event in events:
        text = json.dumps(event)
        assert "key" not in event or FINGERPRINT.match(event["key"]), text
        for key in keys:
            assert key.secret not in text


def test_events_reach_the_handler_with_fingerprints_only(emulator, make_pool, logs):
    set_log_handler(logs)
    set_log_level("info")

    free, paid = cooldown_and_fallback(emulator, make_pool)

    cooldown = logs.find("key_cooldown", fingerprint(free.secret))
    assert (cooldown["level"], cooldown["tier"], cooldown["cause"]) == ("warn", "free", "per_minute")
    assert isinstance(cooldown["cooldown_ms"], int) and 0 < cooldown["cooldown_ms"] <= 30_000
    fallback = logs.find("paid_fallback", fingerprint(paid.secret))
    assert fallback["level"] == "info"
    assert_fingerprints_only(logs.all(), free, paid)

    # Removed: later events do not reach it.
    set_log_handler(None)
    before = len(logs.all())
    cooldown_and_fallback(emulator, make_pool)
    assert len(logs.all()) == before


def test_levels_filter_events(emulator, make_pool, logs):
    set_log_handler(logs)
    for level in ("error", logging.ERROR, "off", None):
        set_log_level(level)
        free, _ = cooldown_and_fallback(emulator, make_pool)
        assert logs.all() == [], f"level {level!r} let events through"
    set_log_level(logging.WARNING)
    free, paid = cooldown_and_fallback(emulator, make_pool)
    logs.find("key_cooldown", fingerprint(free.secret))
    assert not [e for e in logs.all() if e["event"] == "paid_fallback"], "info event at WARNING"
    set_log_level("DEBUG")
    free, paid = cooldown_and_fallback(emulator, make_pool)
    logs.find("paid_fallback", fingerprint(paid.secret))


def test_set_log_level_rejects_what_is_not_a_level(logs):
    with pytest.raises(ValueError, match="loud"):
        set_log_level("loud")
    with pytest.raises(ValueError):
        set_log_level(-1)
    for wrong in (True, 1.5, b"info"):
        with pytest.raises(TypeError):
            set_log_level(wrong)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        set_log_handler("not callable")  # type: ignore[arg-type]


def test_enable_logging_routes_events_to_the_logging_module(emulator, make_pool, logs, caplog):
    caplog.set_level(logging.INFO, logger="gemini_rotator")
    enable_logging()  # the level follows the logger's: INFO

    free, paid = cooldown_and_fallback(emulator, make_pool)

    records = [r for r in caplog.records if r.name == "gemini_rotator"]
    by_event = {(r.gemini_rotator["event"], r.gemini_rotator.get("key")): r for r in records}
    cooldown = by_event[("key_cooldown", fingerprint(free.secret))]
    assert cooldown.levelno == logging.WARNING
    assert cooldown.getMessage() == (
        f"key_cooldown key={fingerprint(free.secret)} cause=per_minute "
        f"cooldown_ms={cooldown.gemini_rotator['cooldown_ms']} "
        f"group={cooldown.gemini_rotator['group']} model=gemini-3.6-flash tier=free"
    )
    # A key without a project is its own quota group, named by digest (never the key).
    assert cooldown.gemini_rotator["group"].startswith("key:" + fingerprint(free.secret))
    assert free.secret not in cooldown.getMessage()
    assert cooldown.gemini_rotator["cause"] == "per_minute"
    fallback = by_event[("paid_fallback", fingerprint(paid.secret))]
    assert fallback.levelno == logging.INFO
    for record in records:
        assert free.secret not in record.getMessage() and paid.secret not in record.getMessage()
    assert_fingerprints_only([r.gemini_rotator for r in records], free, paid)

    # enable_logging(level) sets the library's level too.
    caplog.clear()
    enable_logging("warn")
    free, paid = cooldown_and_fallback(emulator, make_pool)
    events = [r.gemini_rotator["event"] for r in caplog.records if r.name == "gemini_rotator"]
    assert "key_cooldown" in events and "paid_fallback" not in events


def test_a_raising_handler_does_not_break_calls(emulator, make_pool, logs, caplog):
    caplog.set_level(logging.ERROR, logger="gemini_rotator")
    calls = []

    def broken(event):
        calls.append(event)
        raise ValueError("a handler bug")

    set_log_handler(broken)
    set_log_level("warn")
    free, _ = cooldown_and_fallback(emulator, make_pool)  # the call itself succeeds

    assert [e["event"] for e in calls] == ["key_cooldown"]
    reports = [r for r in caplog.records if r.name == "gemini_rotator" and r.levelno == logging.ERROR]
    assert len(reports) == 1
    assert "raised ValueError" in reports[0].getMessage()
    assert reports[0].exc_info and reports[0].exc_info[0] is ValueError


def test_set_log_handler_inside_a_handler_raises_instead_of_deadlocking(emulator, make_pool, logs):
    raised = []

    def meddling(event):
        try:
            set_log_handler(None)
        except RuntimeError as error:
            raised.append(error)

    set_log_handler(meddling)
    set_log_level("warn")
    cooldown_and_fallback(emulator, make_pool)

    assert raised and "inside a log handler" in str(raised[0])


def test_handler_called_from_many_threads(emulator, make_pool, logs):
    set_log_handler(logs)
    set_log_level("warn")
    key = emulator.add_key()
    client = GeminiClient(make_pool([key], free_rate_limit=1))
    client.simple_query("takes the only slot")

    def refused():
        for _ in range(25):
            with pytest.raises(AllKeysRateLimitedError):
                client.simple_query("refused")

    threads = [threading.Thread(target=refused) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    exhausted = [e for e in logs.all() if e["event"] == "exhausted"]
    assert len(exhausted) == 8 * 25
    assert all(e["retry_after_ms"] > 0 for e in exhausted)


def _child_uses_the_inherited_handler(emulator_url: str, free_secret: str, paid_secret: str,
                                      recorder: Recorder, results) -> None:
    """In a forked child: the parent's handler is still installed and receives the child's
    events; then it is removed (which must not hang) and events stop."""
    pool = gemini_rotator.KeyPool(
        [free_secret], paid_key=paid_secret, base_url=emulator_url, retry_base_ms=1, retry_max_ms=5
    )
    served = GeminiClient(pool).generate_content("child").key_fingerprint
    mine = [e for e in recorder.all() if e.get("key") == fingerprint(free_secret)]
    set_log_handler(None)
    set_log_handler(recorder)
    set_log_handler(None)
    results.send((os.getpid(), served, [e["event"] for e in mine]))
    results.close()


def test_fork_while_another_thread_is_inside_the_handler(emulator, make_pool, logs):
    """A parent thread is inside the handler (so inside the library's logging path) when the
    fork starts. The fork waits for it to leave, so the child does not inherit it as a
    phantom: the child's handler still gets the child's events, and removing it (which waits
    for running handler calls) does not hang."""
    entered = threading.Event()

    def slow(event):
        logs(event)
        if event["event"] == "exhausted":
            entered.set()
            time.sleep(0.5)  # still inside when the fork starts

    set_log_handler(slow)
    set_log_level("warn")
    busy_key = emulator.add_key()
    busy = GeminiClient(make_pool([busy_key], free_rate_limit=1))
    busy.simple_query("takes the only slot")
    refused = []

    def emit():
        try:
            busy.simple_query("refused")
        except AllKeysRateLimitedError as error:
            refused.append(error)

    emitter = threading.Thread(target=emit)
    emitter.start()
    free, paid = emulator.add_keys(2)
    emulator.fault(free.label, "quota_minute", count=1, retry_delay="30s")
    context = multiprocessing.get_context("fork")
    try:
        assert entered.wait(30), "the emitting thread never reached the handler"
        receive, send = context.Pipe(duplex=False)
        child = context.Process(
            target=_child_uses_the_inherited_handler,
            args=(emulator.base_url, free.secret, paid.secret, logs, send),
        )
        child.start()
        send.close()
        try:
            # A child that inherited the parent's thread inside the library never reports.
            assert receive.poll(60), "the child never reported"
            pid, served, events = receive.recv()
            child.join(30)
        finally:
            if child.is_alive():
                child.kill()
                child.join()
    finally:
        emitter.join()

    assert child.exitcode == 0
    assert pid != os.getpid()
    assert served == fingerprint(paid.secret)
    assert events == ["key_cooldown"]
    assert len(refused) == 1
    # The child's events were the child's; the parent's handler still works.
    assert not [e for e in logs.all() if e.get("key") == fingerprint(free.secret)]
    free, _ = cooldown_and_fallback(emulator, make_pool)
    logs.find("key_cooldown", fingerprint(free.secret))
