"""``Run``: the live handle of a tracked run, and its lifecycle rules.

Every call becomes a frame appended to the run's spool with one ``write``; the writer thread
moves the spool into the store. ``log()`` is the hot path: a dict lookup for the keyset, a
type check per value, one ``struct.pack``, one CRC, one system call.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
import zlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mltrail import _validation as v
from mltrail.entities import ParamValue, RunStatus
from mltrail.errors import (
    InvalidArgumentError,
    MltrailError,
    ParamConflictError,
    RunFinishedError,
)
from mltrail.events import codec
from mltrail.events.spool import move_spool, remove_spool
from mltrail.settings import settings

if TYPE_CHECKING:
    import os
    import struct
    from collections.abc import Iterable
    from pathlib import Path
    from types import TracebackType

    from mltrail.artifacts.records import ArtifactVersion
    from mltrail.events.spool import SpoolAppender
    from mltrail.events.writer import Writer
    from mltrail.sdk.recorder import Recorder
    from mltrail.sdk.session import CaptureSession
    from mltrail.store.registry import StoreLocation

__all__ = ["Run"]

_MAX = v.MAX_STEP
#: How long ``finish`` waits for a store already known to be down before leaving the spool.
_DOWN_CLOSE_S = 5.0


_frame = codec.frame
_HEADER = codec.FRAME_HEADER
_KIND_METRICS = codec.KIND_METRICS
_time_ns = time.time_ns
_crc32 = zlib.crc32


class Run:
    """A run being tracked. Create it with :func:`mltrail.init`.

    Usable as a context manager: leaving the block finishes the run as ``finished``, or
    ``failed`` on an exception (``killed`` on KeyboardInterrupt).

    Thread-safe: several threads may log to one run.
    """

    def __init__(
        self,
        *,
        run_id: str,
        project: str,
        name: str,
        location: StoreLocation,
        spool: SpoolAppender,
        config: dict[str, Any],
        params: dict[str, ParamValue],
        next_step: int = 0,
    ) -> None:
        self.run_id = run_id
        self.project = project
        self.name = name
        self.location = location
        self.config = config
        self._spool = spool
        self._params = dict(params)
        self._lock = threading.RLock()
        self._keysets: dict[tuple[str, ...], tuple[int, struct.Struct, tuple[str, ...]]] = {}
        self._step = next_step
        self._system_step = 0
        self._stop_after: int | None = None  # pre-flight: steps allowed before a clean exit
        self._steps_seen = 0
        self._last_counted: int | None = None
        self._status: RunStatus | None = None
        self._finishing = False
        self._sealed = False  # the spool takes nothing more (not even late captured state)
        #: ``finish()`` waits for the store (a server store, ``MLTRAIL_DURABILITY=call``)
        self.finish_waits = False
        self._writer: Writer | None = None
        self._session: CaptureSession | None = None
        #: metric points not written because the unsent backlog passed its cap
        #: (``MLTRAIL_SPOOL_MAX_MB``); recorded on the run as the tag ``mltrail.dropped_points``
        self.dropped_points = 0
        self._backlog_cap = settings().spool_max_bytes
        #: True in a process started by ``mltrail run``: it logs into the wrapper's run, and
        #: the wrapper sets the final status from the exit code.
        self.attached = False
        #: where artifact bytes go (``init(artifacts=...)``); None: ``MLTRAIL_ARTIFACTS`` or
        #: the store's default (see :mod:`mltrail.artifacts.storage`)
        self.artifacts_location: str | None = None
        self._inputs: dict[str, dict[str, Any]] = {}
        self._outputs: dict[str, dict[str, Any]] = {}
        self._recorder: Recorder | None = None

    @property
    def id(self) -> str:
        """The run id (``run_id``; the name other trackers' users type)."""
        return self.run_id

    def __repr__(self) -> str:
        return (
            f"<Run {self.run_id} project={self.project!r} name={self.name!r} status={self.status}>"
        )

    @property
    def status(self) -> RunStatus:
        """``running`` until finished; then the final status."""
        return self._status or RunStatus.RUNNING

    @property
    def spool_path(self) -> Path:
        """Where this run's events wait for the store."""
        return self._spool.path

    @property
    def params(self) -> dict[str, ParamValue]:
        """A copy of the params logged so far (config included, flattened)."""
        return dict(self._params)

    # -- the hot path -------------------------------------------------------------------

    def log(self, data: Mapping[str, Any], step: int | None = None) -> None:
        """Log metric values at a step.

        Args:
            data: metric name → real number (int, float, numpy/torch scalar; NaN and ±inf
                allowed). Names are NFC-normalised; ``/`` is fine (``train/loss``).
            step: an int ≥ 0; default: one more than the previous step (0 at first).
                Steps may repeat or go back; every point is kept.

        Raises:
            InvalidArgumentError: a bad name, value or step (the message names it).
            RunFinishedError: the run has finished.
            SpoolError: the spool cannot be written (disk full, read-only).
        """
        ts = _time_ns() // 1_000_000
        if type(data) is not dict and not isinstance(data, Mapping):
            raise InvalidArgumentError(
                f"log() takes a mapping of metrics, got {type(data).__name__}"
            )
        keys = tuple(data)
        values: Any = data.values()
        for x in values:
            if type(x) is not float and type(x) is not int:
                values = [v.check_metric_value(k, x) for k, x in zip(keys, values, strict=True)]
                break
        with self._lock:
            if self._status is not None:
                raise RunFinishedError(f"run {self.run_id} has finished; it takes no more metrics")
            ks = self._keysets.get(keys) or self._new_keyset(keys)
            if step is None:
                step = self._step
            elif type(step) is not int or step < 0 or step > _MAX:
                step = v.check_step(step)
            if self._stop_after is not None:
                self._count_step(step)
            self._step = step + 1
            spool = self._spool
            w = self._writer
            if w is not None and spool.size - w.position > self._backlog_cap:
                self._drop(len(keys))
                return
            payload = ks[1].pack(_KIND_METRICS, ks[0], step, ts, *values)
            spool.append(_HEADER.pack(len(payload), _crc32(payload)) + payload)

    def _drop(self, points: int) -> None:
        """The store has been unreachable so long that the backlog hit its cap: count, warn once."""
        if not self.dropped_points:
            import logging

            logging.getLogger("mltrail").error(
                "mltrail: run %s has %d MB waiting for the store %s, over MLTRAIL_SPOOL_MAX_MB; "
                "metric points are dropped and counted (run.dropped_points) until it drains; "
                "params, tags and the status are still kept",
                self.run_id,
                self._backlog_cap >> 20,
                self.location.display,
            )
        self.dropped_points += points

    def _count_step(self, step: int) -> None:
        """Pre-flight mode: end the process cleanly before a step past the allowed count."""
        if step != self._last_counted:
            if self._stop_after is not None and self._steps_seen >= self._stop_after:
                raise SystemExit(0)
            self._steps_seen += 1
            self._last_counted = step

    def _new_keyset(self, keys: tuple[str, ...]) -> tuple[int, struct.Struct, tuple[str, ...]]:
        if not keys:
            raise InvalidArgumentError("log() needs at least one metric")
        names = tuple(v.check_key(k, "metric") for k in keys)
        if len(set(names)) != len(names):
            raise InvalidArgumentError(
                f"metric names {keys!r} repeat a name after NFC normalisation"
            )
        ksid = len(self._keysets)
        body = {"id": ksid, "keys": list(names)}
        self._spool.append(_frame(codec.encode_json(codec.KIND_KEYSET, body)))
        entry = (ksid, codec.metrics_struct(len(names)), names)
        self._keysets[keys] = entry
        return entry

    # -- params and tags ----------------------------------------------------------------

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log hyperparameters; nested mappings are flattened with ``.``.

        Values convert as a config does (enums, paths, numpy scalars, dates, ...; see
        :mod:`mltrail.capture.config`); lists and tuples are stored as their JSON text.
        Params are immutable: the same value again is fine, a different one is an error.

        Raises:
            ParamConflictError: a key already holds a different value (names both).
            InvalidArgumentError: a bad key, a value without a stable JSON form, two keys
                that flatten to one (``{"a.b": 1, "a": {"b": 2}}``; names both) or a cycle.
        """
        flat = _check_params(params)
        with self._lock:
            self._check_open()
            fresh = {}
            for key, value in flat.items():
                if key in self._params:
                    old = self._params[key]
                    if not _same_param(old, value):
                        raise ParamConflictError(
                            f"param {key!r} is already {old!r}; cannot change it to {value!r} "
                            "(params are immutable; use a tag for mutable values)"
                        )
                    continue
                fresh[key] = value
            if fresh:
                self._spool.append(_frame(codec.encode_json(codec.KIND_PARAMS, fresh)))
                self._params.update(fresh)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set tags (mutable string labels); values are stored as ``str``."""
        if not isinstance(tags, Mapping):
            raise InvalidArgumentError(f"tags must be a mapping, got {type(tags).__name__}")
        clean = v.check_tags(tags)
        with self._lock:
            self._check_open()
            if clean:
                self._spool.append(_frame(codec.encode_json(codec.KIND_TAGS, clean)))

    def _check_open(self) -> None:
        if self._status is not None:
            raise RunFinishedError(f"run {self.run_id} has finished")

    # -- artifacts (synchronous: they are rare) ------------------------------------------

    def log_artifact(
        self,
        path: str | os.PathLike[str],
        name: str | None = None,
        type: str = "dataset",
        aliases: Iterable[str] | str | None = None,
        metadata: Mapping[str, Any] | None = None,
        *,
        reference: bool = False,
    ) -> ArtifactVersion:
        """Store a file or directory as a version ``name:vN`` produced by this run.

        Same content, same version; changed content, ``vN+1`` (and ``latest``). See
        `mltrail.sdk.artifacts.log_artifact` for the arguments and errors.
        """
        from mltrail.sdk import artifacts

        self._check_open()
        version = artifacts.log_artifact(
            self.recorder, path, name, type, aliases, metadata, reference=reference
        )
        self.recorder.artifact_logged(version)
        return version

    def log_reference(
        self,
        target: str | os.PathLike[str],
        name: str | None = None,
        type: str = "dataset",
        aliases: Iterable[str] | str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> ArtifactVersion:
        """Record ``s3://...`` or a local path by digest, without copying the bytes."""
        from mltrail.sdk import artifacts

        self._check_open()
        version = artifacts.log_reference(self.recorder, target, name, type, aliases, metadata)
        self.recorder.artifact_logged(version)
        return version

    def use_artifact(self, ref: str, root: str | os.PathLike[str] | None = None) -> Path:
        """Fetch ``name:alias`` / ``name:vN`` / a digest (verified) and record it as an input.

        Returns the checked-out file or directory. See
        `mltrail.sdk.artifacts.use_artifact`.
        """
        from mltrail.sdk import artifacts

        self._check_open()
        return artifacts.use_artifact(self.recorder, ref, root)

    # -- lifecycle -----------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Block until everything logged so far is in the store.

        Returns:
            True when drained, False on timeout (nothing is lost: it stays in the spool).

        Raises:
            MltrailError: a failure of the writer thread, reported once.
        """
        if self._writer is None:
            return True
        return self._writer.flush(timeout)

    def finish(
        self,
        status: RunStatus | str = RunStatus.FINISHED,
        timeout: float | None = None,
        *,
        wait: bool | None = None,
    ) -> None:
        """End the run: record the status, drain the spool into the store, remove it.

        Idempotent. By default (``wait``: ``MLTRAIL_FINISH_WAIT``, on) it returns once the
        store has the whole run, so any process reads it at once. ``wait=False`` returns once
        the run's end is in its spool (as durable as every ``log()``:
        ``MLTRAIL_DURABILITY``) and drains in the background
        (:mod:`mltrail.events.finisher`): every open of the store in this process
        (``mltrail.Api``, the CLI, ``open_store``) and the process's exit wait for it; for
        loops of many short runs. A server store and ``MLTRAIL_DURABILITY=call`` always
        wait.

        If the store has not taken everything within ``timeout`` seconds (default
        ``MLTRAIL_FINISH_TIMEOUT_S``, 60; ``math.inf`` waits as long as it takes; a store
        already known to be unreachable gets 5 s at most), the spool is kept and
        ``mltrail sync`` (or any later open of the store) applies it. What it waits for is
        printed as soon as the wait is not instant.

        Raises:
            SpoolError: the final status could not be written (a full disk); nothing was
                ended, and ``finish`` may be called again.
            MltrailError: waiting, a failure of the writer (a param conflict, a refused
                token); in the background it is logged instead.
        """
        from mltrail.sdk import active

        status = RunStatus(status)
        with self._lock:
            if self._status is not None or self._finishing:
                return
            self._finishing = True
        try:
            if self._session is not None:
                self._session.stop_live()  # console lines and samples go into the spool
                self._session.finish_snapshot()  # code and seeds as they were, not as next
            with self._lock:
                if self.dropped_points:
                    tag = {"mltrail.dropped_points": str(self.dropped_points)}
                    self._spool.append(_frame(codec.encode_json(codec.KIND_TAGS, tag)))
                if not self.attached:  # an attached process leaves the status to its parent
                    body = {"status": status.value, "end_ms": time.time_ns() // 1_000_000}
                    self._spool.append(_frame(codec.encode_json(codec.KIND_STATUS, body)))
                self._status = status
        except BaseException:
            self._finishing = False  # nothing ended: a later finish() tries again
            raise
        active.forget(self)
        if wait is None:
            wait = settings().finish_wait
        if wait or self.finish_waits or self._writer is None:
            self._end(timeout)
            return
        from mltrail.events import finisher

        finisher.submit(self.location.uri, functools.partial(self._end_in_background, timeout))

    def _end(self, timeout: float | None) -> None:
        """The rest of a finish: the captured state into the spool, the spool into the store."""
        if self._session is not None:
            self._session.finish_capture()
        self._close(timeout)

    def _end_in_background(self, timeout: float | None) -> None:
        with contextlib.suppress(MltrailError):  # the writer has logged it
            self._end(timeout)

    def _close(self, timeout: float | None) -> None:
        import logging
        import math

        if timeout is None:
            from mltrail.settings import settings

            timeout = settings().finish_timeout_s
        wait = None if math.isinf(timeout) else max(0.0, timeout)
        with self._lock:
            self._sealed = True  # what the writer drains now is all there is
        # a store known to be down holds the process up _DOWN_CLOSE_S at most: the spool is
        # kept and `mltrail sync` applies it
        drained = (
            self._writer.close(wait, on_wait=self._say_waiting, down_s=_DOWN_CLOSE_S)
            if self._writer is not None
            else False
        )
        if drained and self._writer is not None and self._writer.damage:
            # applied, but some bytes could not be read: keep them for inspection
            path = self._spool.path
            move_spool(path, path.with_name(path.name + ".damaged"))
        elif drained:
            remove_spool(self._spool.path)
        else:
            with contextlib.suppress(MltrailError):  # kept for `mltrail sync`: on disk now
                self._spool.sync()
            logging.getLogger("mltrail").warning(
                "mltrail: run %s is not fully in the store %s yet; its events are kept in %s "
                "and `mltrail sync` (or the next run) will apply them",
                self.run_id,
                self.location.display,
                self._spool.path,
            )
        self._spool.close()
        if drained and not self.attached:  # the run's end is in the store: OpenLineage
            from mltrail.lineage_export import live

            live.run_ended(self.location.uri, self.run_id)
        if self._writer is not None and self._writer.error is not None:
            err, self._writer.error = self._writer.error, None
            raise err

    def _say_waiting(self, what: str, timeout: float | None) -> None:
        """Tell the user at once why ``finish`` has not returned yet."""
        import logging

        bound = "as long as it takes" if timeout is None else f"up to {timeout:.1f} s"
        logging.getLogger("mltrail").warning(
            "mltrail: finishing run %s: waiting %s for %s (MLTRAIL_FINISH_TIMEOUT_S); "
            "its events are safe in %s and `mltrail sync` applies them if the wait ends first",
            self.run_id,
            bound,
            what,
            self._spool.path,
        )

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        status = _status_for(exc)
        if exc is not None and status is not RunStatus.FINISHED:
            self._record_error(exc, tb)
        self.finish(status)

    def _record_error(self, exc: BaseException, tb: TracebackType | None = None) -> None:
        """Keep what made the run fail (state kind ``error``): type, message, traceback."""
        from mltrail.capture.errors import describe_exception

        with contextlib.suppress(MltrailError):  # an unwritable spool: the status says failed
            self.recorder.error(describe_exception(exc, tb))

    @property
    def recorder(self) -> Recorder:
        """mltrail's own write interface to this run (capture, console, system samples,
        errors, artifacts; see :mod:`mltrail.sdk.recorder`). Not for training code."""
        rec = self._recorder
        if rec is None:
            from mltrail.sdk.recorder import Recorder

            rec = self._recorder = Recorder(self)
        return rec


def _status_for(exc: BaseException | None) -> RunStatus:
    if exc is None:
        return RunStatus.FINISHED
    if isinstance(exc, SystemExit):
        return RunStatus.FINISHED if exc.code in (None, 0) else RunStatus.FAILED
    if isinstance(exc, KeyboardInterrupt):
        return RunStatus.KILLED
    return RunStatus.FAILED


def _same_param(a: ParamValue, b: ParamValue) -> bool:
    if type(a) is not type(b):
        return False
    return a == b or (a != a and b != b)  # NaN equals NaN here


def _check_params(params: Mapping[str, Any]) -> dict[str, ParamValue]:
    """Params (or a converted config) → flat, validated params: the config rules apply.

    Values are converted like a config (:mod:`mltrail.capture.config`: refused without a
    stable JSON form, cycles refused), then flattened by :func:`mltrail._validation.
    flatten_params` (collisions refused, naming both keys).
    """
    if not isinstance(params, Mapping):
        raise InvalidArgumentError(f"params must be a mapping, got {type(params).__name__}")
    from mltrail.capture.config import config_to_dict

    return v.flatten_params(config_to_dict(params, what="param"))
