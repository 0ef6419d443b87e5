"""``Recorder``: what mltrail's own components write into a live run.

The user writes through :class:`~mltrail.sdk.run.Run` (``log``, ``log_params``,
``set_tags``). Everything else a run records comes from mltrail itself: captured state and
the blobs it names (``capture/``), console lines (the tee, ``mltrail run``'s pipes), system
samples (the sampler), heartbeats (the writer), the error that failed the run, artifacts
used and produced (``artifacts/``), a reproduction verdict (``repro/``). Those components get
a ``Recorder`` (``run.recorder``) and never reach into ``Run``'s private members.

Contract:

- **Thread-safe.** Every method may be called from any thread; appends are serialised with
  the run's own calls by the run's lock.
- **Finished means closed.** Once the run has its final status every write is a silent no-op
  (a sampler or tee stopping late must not fail), except that :meth:`spool_size` still answers
  and captured :meth:`state` is taken until the spool is sealed: ``finish()`` does not wait
  for the state capture, which completes in the background before the drain.
- **Durable when it returns.** A write that returned is in the spool (in the kernel), like
  ``log()``; one that cannot be written raises :class:`~mltrail.errors.SpoolError` and leaves
  nothing (the spool is cut back to its last whole frame).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from mltrail.events import codec

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mltrail.artifacts.records import ArtifactVersion
    from mltrail.sdk.run import Run
    from mltrail.store.registry import StoreLocation

__all__ = ["ERROR_TAG_CHARS", "Recorder"]

#: the one-line error kept as the tag ``mltrail.error`` is cut here
ERROR_TAG_CHARS = 1000
_frame = codec.frame


class Recorder:
    """The internal write interface of one live run (see the module docstring)."""

    __slots__ = ("_run",)

    def __init__(self, run: Run) -> None:
        self._run = run

    # -- who --------------------------------------------------------------------------------
    @property
    def run_id(self) -> str:
        return self._run.run_id

    @property
    def project(self) -> str:
        return self._run.project

    @property
    def location(self) -> StoreLocation:
        return self._run.location

    @property
    def artifacts_location(self) -> str | None:
        """Where artifact bytes go (``init(artifacts=...)``); None: the store's default."""
        return self._run.artifacts_location

    @property
    def attached(self) -> bool:
        """The run belongs to a ``mltrail run`` wrapper (which owns its status)."""
        return self._run.attached

    # -- writes -----------------------------------------------------------------------------
    def _append(self, frames: list[bytes], until_sealed: bool = False) -> None:
        run = self._run
        with run._lock:
            if run._status is None or (until_sealed and not run._sealed):
                for f in frames:
                    run._spool.append(f)

    def state(
        self, kind: str, data: Mapping[str, Any], blobs: Mapping[str, bytes] | None = None
    ) -> None:
        """Record a document of captured state (and the blobs it refers to by digest).

        A later document of the same kind replaces the earlier one in the store.
        """
        frames = [_frame(codec.encode_blob(d, b)) for d, b in (blobs or {}).items()]
        frames.append(_frame(codec.encode_json(codec.KIND_STATE, {"kind": kind, "data": data})))
        self._append(frames, until_sealed=True)

    def console(self, lines: list[tuple[int, str, str]]) -> None:
        """Record console lines: ``(timestamp_ms, "stdout" | "stderr", text)``."""
        if lines:
            self._append([_frame(codec.encode_json(codec.KIND_CONSOLE, {"lines": lines}))])

    def system(self, sample: Mapping[str, float]) -> None:
        """Record a system-metrics sample on its own step counter (never the user's)."""
        run = self._run
        keys = tuple(sample)
        values = [float(x) for x in sample.values()]
        ts = time.time_ns() // 1_000_000
        with run._lock:
            if run._status is not None:
                return
            ks = run._keysets.get(keys) or run._new_keyset(keys)
            step = run._system_step
            run._system_step += 1
            run._spool.append(_frame(ks[1].pack(codec.KIND_METRICS, ks[0], step, ts, *values)))

    def heartbeat(self) -> None:
        """Record that the run is alive now."""
        self._append([_frame(codec.encode_heartbeat(time.time_ns() // 1_000_000))])

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything recorded so far is in the store (False on timeout)."""
        return self._run.flush(timeout)

    def spool_size(self) -> int:
        """Bytes appended to the run's spool so far (what a flush waits for)."""
        return self._run._spool.size

    def spool_sync(self) -> None:
        """Put what the run's spool holds on stable storage (the writer's group commit in
        ``MLTRAIL_DURABILITY=batch``)."""
        self._run._spool.sync()

    def spool_release(
        self, upto: int, header: dict[str, Any], keysets: dict[int, list[str]]
    ) -> int:
        """Give back the disk of the spool the store has applied before ``upto`` (the
        writer calls it as a long run goes on); returns the bytes given back."""
        return self._run._spool.release(upto, header, keysets)

    def error(self, doc: Mapping[str, Any]) -> None:
        """Record what failed the run (an ``error`` document, see ``capture/errors.py``) and
        its one-line form as the tag ``mltrail.error``."""
        from mltrail.capture.errors import ERROR_KIND, ERROR_TAG, one_line

        line = one_line(dict(doc))[:ERROR_TAG_CHARS]
        self._append(
            [
                _frame(codec.encode_json(codec.KIND_STATE, {"kind": ERROR_KIND, "data": doc})),
                _frame(codec.encode_json(codec.KIND_TAGS, {ERROR_TAG: line})),
            ]
        )

    def tags(self, tags: Mapping[str, str]) -> None:
        """Set tags mltrail itself owns (``mltrail.*``), already validated."""
        if tags:
            self._append([_frame(codec.encode_json(codec.KIND_TAGS, dict(tags)))])

    def artifact_used(self, version: ArtifactVersion) -> None:
        """Record a used artifact in the run's state (kind ``inputs``).

        Keyed by artifact (``artifact:project/name``) so that ``mltrail diff`` shows a run that
        used another version of the same artifact as a changed digest.
        """
        run = self._run
        key = f"artifact:{version.project}/{version.name}"
        run._inputs[key] = _artifact_entry(key, version)
        self.state("inputs", {"inputs": list(run._inputs.values())})

    def artifact_logged(self, version: ArtifactVersion) -> None:
        """Record a logged artifact in the run's state (kind ``outputs``).

        The store keeps one version per content, produced by the first run that logged it;
        this record says what *this* run logged, so a reproduction that wrote the same bytes
        can be compared digest for digest (``mltrail reproduce``).
        """
        run = self._run
        key = f"artifact:{version.project}/{version.name}"
        run._outputs[key] = _artifact_entry(key, version)
        self.state("outputs", {"outputs": list(run._outputs.values())})

    # -- the capture session ---------------------------------------------------------------
    def wait_captured(self, timeout: float = 30.0) -> bool:
        """Wait until the background capture has been recorded (True), or time out."""
        session = self._run._session
        return True if session is None else session.wait_captured(timeout)

    def stop_capture(self) -> None:
        """Stop sampling and teeing and record what the capture holds (before a verdict)."""
        session = self._run._session
        if session is not None:
            session.stop()


def _artifact_entry(key: str, version: ArtifactVersion) -> dict[str, Any]:
    return {
        "name": key,
        "version": version.version,
        "digest": version.digest,
        "kind": version.kind,
    }
