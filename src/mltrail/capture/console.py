"""Console capture: tee stdout and stderr into a timestamped console log.

What the user sees is untouched: every write goes to the original stream at once and unchanged.
For the log, text is cut into lines at ``\\n``; a ``\\r`` (a progress bar redrawing itself) makes
the next text replace the line instead of extending it, so the log keeps the final state of a
progress bar, not its thousand redraws. Each line carries the time of its first write.
"""

from __future__ import annotations

import codecs
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any, TextIO, cast

__all__ = ["ConsoleLine", "ConsoleTee", "tee_subprocess_output"]

ConsoleLine = tuple[int, str, str]
"""One log line: (timestamp in ms since the epoch, ``"stdout"`` or ``"stderr"``, text)."""

Sink = Callable[[list[ConsoleLine]], None]

_SPLIT = re.compile(r"([\r\n])")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class _LineAssembler:
    """Turns a stream of text chunks into completed log lines (not thread-safe by itself)."""

    def __init__(self, stream: str, max_chars: int) -> None:
        self.stream = stream
        self.max_chars = max_chars
        self._parts: list[str] = []
        self._len = 0
        self._dropped = 0
        self._ts: int | None = None
        self._cr = False

    def feed(self, text: str, now_ms: int, out: list[ConsoleLine]) -> None:
        """Adds ``text``; appends the lines it completes to ``out``."""
        if "\n" not in text and "\r" not in text:
            if text:
                self._add(text, now_ms)
            return
        for i, piece in enumerate(_SPLIT.split(text)):
            if i % 2 == 0:
                if piece:
                    self._add(piece, now_ms)
            elif piece == "\n":
                out.append(self._complete(now_ms))
            else:
                self._cr = True

    def _add(self, piece: str, now_ms: int) -> None:
        if self._cr:  # carriage return: this text redraws the line
            self._parts, self._len, self._dropped, self._cr = [], 0, 0, False
        if self._ts is None:
            self._ts = now_ms
        room = self.max_chars - self._len
        if len(piece) > room:
            self._dropped += len(piece) - max(room, 0)
            piece = piece[: max(room, 0)]
        if piece:
            self._parts.append(piece)
            self._len += len(piece)

    def _complete(self, now_ms: int) -> ConsoleLine:
        text = "".join(self._parts)
        if self._dropped:
            text += f"…[mltrail: {self._dropped} more chars truncated]"
        line = (now_ms if self._ts is None else self._ts, self.stream, text)
        self._parts, self._len, self._dropped, self._ts, self._cr = [], 0, 0, None, False
        return line

    def flush(self, now_ms: int, out: list[ConsoleLine]) -> None:
        """Appends the pending partial line, if it has any text, to ``out``."""
        if self._len or self._dropped:
            out.append(self._complete(now_ms))
        else:
            self._parts, self._ts, self._cr = [], None, False


class _TeeStream:
    """Stands in for sys.stdout / sys.stderr: forwards everything, records writes."""

    def __init__(self, original: TextIO, tee: ConsoleTee, assembler: _LineAssembler) -> None:
        self._original = original
        self._tee = tee
        self._assembler = assembler
        self._active = True

    def write(self, text: str) -> int:
        n = self._original.write(text)
        if self._active:
            self._tee._record(self._assembler, text)
        return n

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._original.flush()

    def __getattr__(self, name: str) -> Any:
        # isatty, fileno, encoding, errors, buffer, closed, reconfigure, ...
        if name == "_original":  # not yet set (copy/pickle): no recursion
            raise AttributeError(name)
        return getattr(self._original, name)

    def __repr__(self) -> str:
        return f"<mltrail tee of {self._original!r}>"


class ConsoleTee:
    """Tees sys.stdout and sys.stderr into batches of timestamped lines for a sink.

    Attributes:
        error: The first exception raised by the sink, else None (sink errors are swallowed).
    """

    def __init__(
        self, sink: Sink, flush_interval_s: float = 1.0, max_line_chars: int = 65536
    ) -> None:
        """Prepares a tee; nothing is replaced until :meth:`start`.

        Args:
            sink: Receives lists of ``(timestamp_ms, "stdout"|"stderr", text)`` lines, at most
                every ``flush_interval_s`` seconds and at :meth:`stop`, from a daemon thread.
            flush_interval_s: Seconds between hand-overs to the sink.
            max_line_chars: Longer lines are cut there and end with a truncation marker.
        """
        if max_line_chars < 1:
            raise ValueError(f"max_line_chars must be positive, got {max_line_chars!r}")
        self._sink = sink
        self.flush_interval_s = float(flush_interval_s)
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._sink_lock = threading.Lock()
        self._pending: list[ConsoleLine] = []
        self._assemblers = {
            name: _LineAssembler(name, max_line_chars) for name in ("stdout", "stderr")
        }
        self._wrappers: dict[str, _TeeStream] = {}
        self._started = False

    def start(self, *, patch_sys: bool = True) -> None:
        """Replaces sys.stdout and sys.stderr with tee wrappers and starts the flusher.

        Args:
            patch_sys: False starts only the batching (for lines given to :meth:`submit`).

        Raises:
            RuntimeError: The tee was started before (a tee is single-use).
        """
        if self._started:
            raise RuntimeError("ConsoleTee already started")
        self._started = True
        if patch_sys:
            for name in ("stdout", "stderr"):
                original = getattr(sys, name)
                if original is None:  # e.g. pythonw: nothing to tee
                    continue
                wrapper = _TeeStream(original, self, self._assemblers[name])
                self._wrappers[name] = wrapper
                setattr(sys, name, cast("TextIO", wrapper))
        _ticker.add(self)

    def stop(self) -> None:
        """Restores the originals (where still ours), and hands every pending line to the sink.

        A wrapper that someone replaced in turn is left in place but stops recording.
        """
        for name, wrapper in self._wrappers.items():
            wrapper._active = False
            if getattr(sys, name) is wrapper:
                setattr(sys, name, wrapper._original)
        self._wrappers = {}
        _ticker.remove(self)
        with self._lock:
            now = _now_ms()
            for assembler in self._assemblers.values():
                assembler.flush(now, self._pending)
        self._flush()

    def submit(self, lines: list[ConsoleLine]) -> None:
        """Queues already assembled lines (e.g. from :func:`tee_subprocess_output`)."""
        with self._lock:
            self._pending.extend(lines)

    def _record(self, assembler: _LineAssembler, text: str) -> None:
        try:
            with self._lock:
                assembler.feed(text, _now_ms(), self._pending)
        except Exception:  # never break the user's print
            pass

    def _flush(self) -> None:
        with self._sink_lock:
            with self._lock:
                batch, self._pending = self._pending, []
            if not batch:
                return
            try:
                self._sink(batch)
            except Exception as exc:
                if self.error is None:
                    self.error = exc


class _Ticker:
    """One thread per process hands every live tee's lines to its sink, each at its interval
    (a tee per run would start and join a thread per run)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._due: dict[ConsoleTee, float] = {}
        self._thread: threading.Thread | None = None

    def add(self, tee: ConsoleTee) -> None:
        with self._cond:
            self._due[tee] = time.monotonic() + tee.flush_interval_s
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="mltrail-console", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def remove(self, tee: ConsoleTee) -> None:
        with self._cond:
            self._due.pop(tee, None)

    def _loop(self) -> None:
        while True:
            with self._cond:
                now = time.monotonic()
                due = [t for t, at in self._due.items() if at <= now]
                for t in due:
                    self._due[t] = now + t.flush_interval_s
                if not due:
                    nxt = min(self._due.values(), default=now + 1.0)
                    self._cond.wait(max(0.0, nxt - now))
                    continue
            for tee in due:
                tee._flush()


_ticker = _Ticker()


def _after_fork_in_child() -> None:
    global _ticker
    _ticker = _Ticker()


os.register_at_fork(after_in_child=_after_fork_in_child)  # its thread did not survive the fork


class _PipeTee(threading.Thread):
    """Copies a child's pipe to a target and feeds its lines to a sink."""

    def __init__(
        self,
        stream: IO[bytes],
        target: IO[bytes],
        stream_name: str,
        line_sink: Sink,
        max_chars: int,
    ) -> None:
        super().__init__(name=f"mltrail-pipe-{stream_name}", daemon=True)
        self.stream = stream
        self.target: IO[bytes] | None = target
        self.line_sink = line_sink
        self.assembler = _LineAssembler(stream_name, max_chars)
        self.error: BaseException | None = None

    def run(self) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        read = getattr(self.stream, "read1", self.stream.read)
        while True:
            try:
                chunk: bytes = read(65536)
            except (OSError, ValueError) as exc:
                self._note(exc)
                chunk = b""
            if self.target is not None and chunk:
                try:
                    self.target.write(chunk)
                    self.target.flush()
                except Exception as exc:  # keep draining so the child never blocks
                    self._note(exc)
                    self.target = None
            lines: list[ConsoleLine] = []
            now = _now_ms()
            self.assembler.feed(decoder.decode(chunk, final=not chunk), now, lines)
            if not chunk:
                self.assembler.flush(now, lines)
            if lines:
                try:
                    self.line_sink(lines)
                except Exception as exc:
                    self._note(exc)
            if not chunk:
                return

    def _note(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc


def tee_subprocess_output(
    stream: IO[bytes],
    target: IO[bytes],
    stream_name: str,
    line_sink: Sink,
    max_line_chars: int = 65536,
) -> threading.Thread:
    """Starts a daemon thread copying a child's pipe to ``target`` and its lines to a sink.

    Bytes reach ``target`` unchanged and flushed per chunk (progress bars stay live); the text,
    decoded as UTF-8 with replacement, goes through the same line assembly as
    :class:`ConsoleTee`. The thread ends at end of file, after the last partial line.

    Args:
        stream: The child's pipe, e.g. ``proc.stdout`` of a ``subprocess.Popen``.
        target: Where the bytes go, e.g. ``sys.stdout.buffer``.
        stream_name: ``"stdout"`` or ``"stderr"``, the stream name on each line.
        line_sink: Receives the lines each chunk completes (e.g. :meth:`ConsoleTee.submit`).
        max_line_chars: Longer lines are cut there and end with a truncation marker.

    Returns:
        The started thread; join it after the child exits. Its ``error`` attribute holds the
        first exception it swallowed (a failing target or sink), else None.
    """
    thread = _PipeTee(stream, target, stream_name, line_sink, max_line_chars)
    thread.start()
    return thread
