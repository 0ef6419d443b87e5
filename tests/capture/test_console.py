"""Console capture: the tee keeps the terminal byte-identical and logs timestamped lines."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import time
from typing import Any, BinaryIO, cast

import pytest

from mltrail.capture.console import ConsoleLine, ConsoleTee, tee_subprocess_output


class Streams:
    """The StringIO originals standing in for the terminal, and the sink's batches."""

    def __init__(self) -> None:
        self.out = io.StringIO()
        self.err = io.StringIO()
        self.batches: list[list[ConsoleLine]] = []

    def sink(self, lines: list[ConsoleLine]) -> None:
        self.batches.append(list(lines))

    @property
    def lines(self) -> list[ConsoleLine]:
        return [line for batch in self.batches for line in batch]

    def texts(self, stream: str = "stdout") -> list[str]:
        return [text for _, name, text in self.lines if name == stream]


def install(monkeypatch: pytest.MonkeyPatch) -> Streams:
    """Replaces sys.stdout / sys.stderr by StringIO originals (in the test body: pytest's own
    capture swaps the streams between setup and call)."""
    s = Streams()
    monkeypatch.setattr(sys, "stdout", s.out)
    monkeypatch.setattr(sys, "stderr", s.err)
    return s


def tqdm_like(n: int, file: Any) -> None:
    """Writes a progress bar the way tqdm does: ``\\r`` + redraw, then a newline at close."""
    for i in range(n + 1):
        file.write(f"\r{i:4d}/{n} |{'#' * (10 * i // n):<10}|")
        file.flush()
    file.write("\n")


def test_output_is_identical_and_lines_are_logged(monkeypatch: pytest.MonkeyPatch) -> None:
    """The originals get exactly what was written; the log gets timestamped lines."""
    streams = install(monkeypatch)
    tee = ConsoleTee(streams.sink, flush_interval_s=60)
    before = time.time_ns() // 1_000_000
    tee.start()
    print("hello", "world")
    print("a\nb", end="", flush=True)
    sys.stdout.writelines(["c\n", "d\r\n"])
    print("oops", file=sys.stderr)
    sys.stdout.write("\n\n")
    tee.stop()
    after = time.time_ns() // 1_000_000
    assert streams.out.getvalue() == "hello world\na\nbc\nd\r\n\n\n"
    assert streams.err.getvalue() == "oops\n"
    assert streams.texts() == ["hello world", "a", "bc", "d", "", ""]
    assert streams.texts("stderr") == ["oops"]
    assert all(isinstance(ts, int) and before <= ts <= after for ts, _, _ in streams.lines)


def test_line_gets_time_of_its_first_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """A line written in two parts carries the time of the first part."""
    streams = install(monkeypatch)
    tee = ConsoleTee(streams.sink, flush_interval_s=60)
    tee.start()
    t0 = time.time_ns() // 1_000_000
    print("start...", end="", flush=True)
    t1 = time.time_ns() // 1_000_000
    time.sleep(0.05)
    print("done")
    tee.stop()
    [(ts, stream, text)] = streams.lines
    assert (stream, text) == ("stdout", "start...done")
    assert t0 <= ts <= t1  # not the time of "done", written 50 ms after t1


def test_carriage_return_progress_bar_collapses(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``\\r`` progress bar is shown byte-for-byte but logged as its final state only."""
    streams = install(monkeypatch)
    expected = io.StringIO()
    tqdm_like(500, expected)
    tee = ConsoleTee(streams.sink, flush_interval_s=60)
    tee.start()
    print("epoch 1")
    tqdm_like(500, sys.stdout)
    sys.stderr.write("\r 50%\r100%\r\n")
    print("after")
    tee.stop()
    assert streams.out.getvalue() == "epoch 1\n" + expected.getvalue() + "after\n"
    assert streams.texts() == ["epoch 1", " 500/500 |##########|", "after"]
    assert streams.texts("stderr") == ["100%"]


def test_cleared_progress_bar_is_replaced_by_the_next_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bar cleared with ``\\r`` + blanks + ``\\r`` (tqdm leave=False) is not logged."""
    streams = install(monkeypatch)
    tee = ConsoleTee(streams.sink, flush_interval_s=60)
    tee.start()
    sys.stdout.write("\r 10%|#   |\r 90%|### |\r          \r")
    print("next line")
    tee.stop()
    assert streams.texts() == ["next line"]


def test_partial_lines_are_flushed_on_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    """Text without a final newline reaches the sink at stop, on both streams."""
    streams = install(monkeypatch)
    tee = ConsoleTee(streams.sink, flush_interval_s=60)
    tee.start()
    sys.stdout.write("no newline")
    sys.stderr.write("half\rprogress 99%")
    tee.stop()
    assert streams.texts() == ["no newline"]
    assert streams.texts("stderr") == ["progress 99%"]


def test_long_lines_are_cut_with_a_marker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lines over max_line_chars are cut in the log (not on screen) and marked."""
    streams = install(monkeypatch)
    tee = ConsoleTee(streams.sink, flush_interval_s=60, max_line_chars=10)
    tee.start()
    print("x" * 25)
    sys.stdout.write("abcdefgh")
    sys.stdout.write("ijklmnop\n")
    print("short")
    tee.stop()
    assert streams.out.getvalue() == "x" * 25 + "\nabcdefghijklmnop\nshort\n"
    first, second, third = streams.texts()
    assert first.startswith("x" * 10) and "15 more chars truncated" in first
    assert second.startswith("abcdefghij") and "6 more chars truncated" in second
    assert third == "short"


def test_multithreaded_writes_lose_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whole-line writes from eight threads all reach both the original and the log."""
    streams = install(monkeypatch)
    tee = ConsoleTee(streams.sink, flush_interval_s=0.01)
    tee.start()

    def work(t: int) -> None:
        for j in range(500):
            sys.stdout.write(f"t{t}-{j}\n")

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    tee.stop()
    expected = {f"t{t}-{j}" for t in range(8) for j in range(500)}
    assert sorted(streams.texts()) == sorted(expected)
    assert set(streams.out.getvalue().splitlines()) == expected
    assert len(streams.batches) < 4000


def test_batches_arrive_on_the_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    """The flusher thread hands lines over without waiting for stop."""
    streams = install(monkeypatch)
    tee = ConsoleTee(streams.sink, flush_interval_s=0.02)
    tee.start()
    print("early")
    deadline = time.monotonic() + 3
    while not streams.batches and time.monotonic() < deadline:
        time.sleep(0.005)
    assert streams.texts() == ["early"]
    tee.stop()


def test_sink_errors_do_not_break_print(monkeypatch: pytest.MonkeyPatch) -> None:
    """A raising sink is recorded in error; printing goes on unchanged."""
    streams = install(monkeypatch)
    calls = []

    def sink(lines: list[ConsoleLine]) -> None:
        calls.append(lines)
        raise OSError("disk full")

    tee = ConsoleTee(sink, flush_interval_s=0.01)
    tee.start()
    for i in range(5):
        print(f"line {i}")
        time.sleep(0.02)
    tee.stop()
    assert streams.out.getvalue() == "".join(f"line {i}\n" for i in range(5))
    assert isinstance(tee.error, OSError) and calls


def test_stop_restores_the_originals(monkeypatch: pytest.MonkeyPatch) -> None:
    """stop puts the original objects back; attributes delegate while teeing."""
    streams = install(monkeypatch)
    tee = ConsoleTee(streams.sink)
    tee.start()
    assert sys.stdout is not streams.out and sys.stderr is not streams.err
    assert sys.stdout.isatty() is False
    assert sys.stdout.closed is False
    with pytest.raises(io.UnsupportedOperation):
        sys.stdout.fileno()
    with pytest.raises(AttributeError):
        _ = sys.stdout.buffer  # StringIO has none: same as the original
    tee.stop()
    assert sys.stdout is streams.out and sys.stderr is streams.err


def test_stop_leaves_a_later_wrapper_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    """If someone replaced our wrapper, stop leaves theirs and ours stops recording."""
    streams = install(monkeypatch)
    tee = ConsoleTee(streams.sink, flush_interval_s=60)
    tee.start()
    ours = sys.stdout
    theirs = io.StringIO()
    sys.stdout = theirs
    tee.stop()
    assert sys.stdout is theirs
    ours.write("after stop\n")
    assert streams.out.getvalue() == "after stop\n"
    assert streams.texts() == []


def test_delegates_to_a_real_file(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Over a real text file, fileno, encoding, errors and buffer are the original's."""
    with open(tmp_path / "out.txt", "w", encoding="utf-8") as f:
        monkeypatch.setattr(sys, "stdout", f)
        tee = ConsoleTee(lambda lines: None)
        tee.start()
        try:
            assert sys.stdout.fileno() == f.fileno()
            assert (sys.stdout.encoding, sys.stdout.errors) == (f.encoding, f.errors)
            assert sys.stdout.buffer is f.buffer
            print("é", flush=True)
        finally:
            tee.stop()
    assert (tmp_path / "out.txt").read_text(encoding="utf-8") == "é\n"


CHILD = r"""
import sys, time
out, err = sys.stdout.buffer, sys.stderr.buffer
out.write(b"out1\n"); out.flush()
err.write(b"err1\n"); err.flush()
for i in range(50):
    out.write(b"\rprogress %d%%" % (2 * i + 2)); out.flush()
out.write(b"\n")
out.write("caf\u00e9 \u2713\n".encode()); out.flush()
err.write(b"tail without newline"); err.flush()
"""


def test_tee_subprocess_output_with_a_real_child() -> None:
    """A child's stdout and stderr reach the targets byte-for-byte and the sink as lines."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    targets = {"stdout": io.BytesIO(), "stderr": io.BytesIO()}
    got: list[ConsoleLine] = []
    lock = threading.Lock()

    def sink(lines: list[ConsoleLine]) -> None:
        with lock:
            got.extend(lines)

    threads = [
        tee_subprocess_output(proc.stdout, targets["stdout"], "stdout", sink),
        tee_subprocess_output(proc.stderr, targets["stderr"], "stderr", sink),
    ]
    assert proc.wait(timeout=10) == 0
    for thread in threads:
        thread.join(5)
        assert not thread.is_alive()
    proc.stdout.close()
    proc.stderr.close()
    progress = b"".join(b"\rprogress %d%%" % (2 * i + 2) for i in range(50))
    assert targets["stdout"].getvalue() == b"out1\n" + progress + "\ncafé ✓\n".encode()
    assert targets["stderr"].getvalue() == b"err1\ntail without newline"
    assert [t for _, s, t in got if s == "stdout"] == ["out1", "progress 100%", "café ✓"]
    assert [t for _, s, t in got if s == "stderr"] == ["err1", "tail without newline"]


class Trickle(io.RawIOBase):
    """A pipe that returns one byte per read, splitting multi-byte characters."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        chunk, self.data = self.data[:1], self.data[1:]
        return chunk


def test_tee_subprocess_output_decodes_across_chunks() -> None:
    """UTF-8 characters split over reads decode whole; undecodable bytes become U+FFFD."""
    data = "naïve ✓\n".encode() + b"bad \xff\n"
    target = io.BytesIO()
    got: list[ConsoleLine] = []
    pipe = cast(BinaryIO, Trickle(data))
    thread = tee_subprocess_output(pipe, target, "stdout", got.extend)
    thread.join(5)
    assert target.getvalue() == data
    assert [t for _, _, t in got] == ["naïve ✓", "bad \ufffd"]


def test_submit_batches_lines_without_patching_sys(monkeypatch: pytest.MonkeyPatch) -> None:
    """With patch_sys=False the tee only batches submitted lines (the `mltrail run` path)."""
    streams = install(monkeypatch)
    tee = ConsoleTee(streams.sink, flush_interval_s=60)
    tee.start(patch_sys=False)
    assert sys.stdout is streams.out
    tee.submit([(1, "stdout", "from child")])
    tee.stop()
    assert streams.lines == [(1, "stdout", "from child")]


def test_real_tqdm_bar_collapses_to_its_final_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """A real tqdm bar on stderr logs one line, the bar's final redraw."""
    tqdm = pytest.importorskip("tqdm")
    streams = install(monkeypatch)
    tee = ConsoleTee(streams.sink, flush_interval_s=60)
    tee.start()
    for _ in tqdm.tqdm(range(200), mininterval=0, miniters=1, ascii=True):
        pass
    tee.stop()
    shown = streams.err.getvalue()
    assert shown.count("\r") > 100 and shown.endswith("\n")
    final = shown.rstrip("\n").split("\r")[-1]
    assert "200/200" in final
    assert streams.texts("stderr") == [final]
