"""Live OpenLineage events: START when a run starts, its terminal event (COMPLETE, FAIL,
ABORT) once its end is in the store, ABORT for a run recovery finds crashed.

Off unless ``MLTRAIL_OPENLINEAGE_URL`` is set (one settings read per call, nothing else).
A run that started with events on sends its end to the same place, whatever the setting
says by then. On, a call only queues a job: one daemon thread per process builds each event
(reading the store for a terminal one) and sends it, so a run never waits for a lineage
server. A failure is logged once per destination (later ones are counted silently) and
never reaches the run.
At exit the process waits for the queue at most ``MLTRAIL_OPENLINEAGE_TIMEOUT_S`` (5 s).

Light at import: the settings and the standard library; the store, openlineage-python and
the event builder load in the thread.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from mltrail.settings import settings

if TYPE_CHECKING:
    from collections.abc import Callable

    from mltrail.entities import RunStatus

__all__ = ["enabled", "failures", "flush", "run_ended", "run_recovered", "run_started"]

log = logging.getLogger("mltrail")

_cond = threading.Condition()
_queue: deque[tuple[str, Callable[[], Any]]] = deque()
_busy = 0  # jobs queued or being sent
_thread: threading.Thread | None = None
_clients: dict[str, Any] = {}
_warned: set[str] = set()
_started: dict[str, str] = {}  # run id -> where its START went (its end goes there too)
_failed: dict[str, int] = {}


def enabled() -> str:
    """The destination of live events (``MLTRAIL_OPENLINEAGE_URL``), or ``""`` when off."""
    try:
        return settings().openlineage_url
    except ValueError as exc:  # a bad setting must not break a run: said once
        _warn_once("settings", f"mltrail: OpenLineage events are off: {exc}")
        return ""


def failures(url: str | None = None) -> int:
    """How many events could not be sent (to ``url``, or anywhere) in this process."""
    with _cond:
        return sum(n for u, n in _failed.items() if url is None or u == url)


def run_started(
    *,
    run_id: str,
    project: str,
    name: str,
    created_ms: int,
    tags: dict[str, str],
    invocation: dict[str, Any] | None,
    user: str = "",
    host: str = "",
    started_ms: int | None = None,
) -> None:
    """Queue the START event of a run that is starting (built from these facts alone);
    ``started_ms``: when a resumed run started again (default: its creation)."""
    url = enabled()
    if not url:
        return
    with _cond:
        _started[run_id] = url

    def build() -> Any:
        from mltrail.lineage_export import events, facts

        return events.build_event(
            facts.at_start(
                run_id=run_id,
                project=project,
                name=name,
                created_ms=created_ms,
                tags=tags,
                invocation=invocation,
                job_namespace=settings().openlineage_namespace,
                user=user,
                host=host,
                started_ms=started_ms,
            ),
            "START",
        )

    _submit(url, build)


def run_ended(store_uri: str, run_id: str) -> None:
    """Queue the terminal event of a run this process started (and sent the START of),
    once its end is in the store at ``store_uri``; the same destination as its START."""
    with _cond:
        url = _started.pop(run_id, "")
    if url:
        _submit(url, lambda: _from_store(store_uri, run_id))


def run_recovered(store_uri: str, run_id: str) -> None:
    """Queue the terminal event of a run whose spool recovery applied (its owner died):
    ABORT when it was marked crashed, or the status its spool ended with."""
    url = enabled()
    if url:
        _submit(url, lambda: _from_store(store_uri, run_id))


def _from_store(store_uri: str, run_id: str) -> Any:
    from mltrail.entities import RunStatus
    from mltrail.lineage_export import events, facts
    from mltrail.store.registry import open_store

    got = facts.from_store(open_store(store_uri), run_id, settings().openlineage_namespace)
    status: RunStatus | None = got.status
    if status is None or status is RunStatus.RUNNING:
        return None  # not ended after all (an attached process's spool): nothing to say
    return events.build_event(got)


def flush(timeout: float | None = None) -> bool:
    """Wait until every queued event has been sent (or has failed); False on timeout."""
    deadline = None if timeout is None else time.monotonic() + timeout
    with _cond:
        while _busy:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            _cond.wait(left)
    return True


def _submit(url: str, job: Callable[[], Any]) -> None:
    global _thread, _busy
    # The thread imports fsspec (the file transport), which imports concurrent.futures.thread,
    # which registers a threading exit hook: refused once the interpreter is shutting down.
    # A script that ends right after its run would lose its events: import it here (~1 ms).
    import concurrent.futures.thread  # noqa: F401

    with _cond:
        _queue.append((url, job))
        _busy += 1
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_loop, name="mltrail-openlineage", daemon=True)
            _thread.start()
        _cond.notify_all()


def _loop() -> None:
    global _busy
    while True:
        with _cond:
            while not _queue:
                _cond.wait()
            url, job = _queue.popleft()
        try:
            _send(url, job)
        finally:
            with _cond:
                _busy -= 1
                _cond.notify_all()


def _send(url: str, job: Callable[[], Any]) -> None:
    try:
        event = job()
        if event is None:
            return
        client = _clients.get(url)
        if client is None:
            from mltrail.lineage_export.transport import make_client

            cfg = settings()
            client = _clients[url] = make_client(
                url, timeout_s=cfg.openlineage_timeout_s, api_key=cfg.openlineage_api_key
            )
        client.emit(event)
    except Exception as exc:  # never into the run: said once per destination, then counted
        with _cond:
            _failed[url] = _failed.get(url, 0) + 1
        _warn_once(
            url,
            f"mltrail: an OpenLineage event could not be sent to {url}: "
            f"{type(exc).__name__}: {exc} (later failures are not reported)",
        )


def _warn_once(key: str, message: str) -> None:
    with _cond:
        if key in _warned:
            return
        _warned.add(key)
    log.warning("%s", message)


def _drain_at_exit() -> None:
    with _cond:
        if not _busy:
            return
    try:
        timeout = settings().openlineage_timeout_s
    except ValueError:
        timeout = 5.0
    if not flush(timeout):
        log.warning(
            "mltrail: OpenLineage events still unsent after %.1f s at exit were dropped "
            "(MLTRAIL_OPENLINEAGE_TIMEOUT_S); `mltrail openlineage export RUN` sends them",
            timeout,
        )


def _after_fork_in_child() -> None:
    global _thread, _cond, _busy
    _thread = None
    _cond = threading.Condition()
    _queue.clear()
    _busy = 0
    _clients.clear()
    _started.clear()


# Registered when this module is imported (by the SDK's init, before any run installs its
# own exit hook): exit hooks run last-registered first, so runs finish (and queue their
# terminal events) before this waits for the queue.
atexit.register(_drain_at_exit)
os.register_at_fork(after_in_child=_after_fork_in_child)
