"""What two runs of a program that logs nothing can be compared by: the files they wrote
(by digest), their console (normalised), and the way they failed.

File names are compared after masking what differs by construction between two runs: time
stamps in folder names (Hydra's ``outputs/2024-01-01/12-00-00/``), TensorBoard event file
names. Hydra's own ``.hydra/`` files are config, not outputs. Documents and logs
(``.pdf``, ``.svg``, ``.log`` ...) often embed the time they were written: their difference
is reported but is not a divergence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mltrail.api import Api

__all__ = [
    "ConsoleComparison",
    "FileComparison",
    "compare_console",
    "compare_files",
    "normalise_line",
    "same_failure",
]

_VOLATILE_SUFFIXES = (".pdf", ".svg", ".eps", ".ps", ".html", ".log", ".out", ".err")
_STAMP_PART = re.compile(
    r"^(\d{4}-\d{2}-\d{2}([_T ]\d{2}[-:]\d{2}[-:]\d{2}(\.\d+)?)?|\d{2}-\d{2}-\d{2}"
    r"|\d{8}[-_]\d{6}|run-\d{8}_\d{6}-\w+)$"
)
_TFEVENTS = re.compile(r"^events\.out\.tfevents\..*")
_ISO = r"\b\d{4}-\d{2}-\d{2}[ T_]\d{2}:\d{2}:\d{2}([.,]\d+)?(Z|[+-]\d{2}:?\d{2})?"
_MASKS = [
    (re.compile(_ISO), "<time>"),
    (re.compile(r"\b\d{4}-\d{2}-\d{2}\b"), "<date>"),
    (re.compile(r"\b\d{1,2}:\d{2}:\d{2}([.,]\d+)?\b"), "<time>"),
    (re.compile(r"\b0x[0-9a-fA-F]{6,}\b"), "<addr>"),
    (re.compile(r"\b\d+(\.\d+)?\s?(ms|s|sec|secs|seconds|it/s|s/it|min)\b"), "<duration>"),
    (re.compile(r"(?<![\w.])(/[^\s/:'\"]+)+/?"), "<path>"),
    (re.compile(r"\bpid[ =:]?\d+\b", re.IGNORECASE), "pid <n>"),
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class FileComparison:
    """A file both or one run wrote: digests (None where not written).

    Attributes:
        name: Its path relative to the working directory, time stamps masked.
        a: The original's digest.
        b: The other run's digest.
        volatile: A document or log, which may embed the time it was written.
    """

    name: str
    a: str | None
    b: str | None
    volatile: bool = False

    @property
    def equal(self) -> bool:
        """Both wrote it, with the same bytes."""
        return self.a is not None and self.a == self.b

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "name": self.name,
            "a": self.a,
            "b": self.b,
            "equal": self.equal,
            "volatile": self.volatile,
        }


def _file_key(path: str) -> str | None:
    parts = path.split("/")
    if ".hydra" in parts[:-1]:
        return None  # Hydra's composed config: recorded as config
    parts = ["*" if _STAMP_PART.match(p) else p for p in parts[:-1]] + parts[-1:]
    if _TFEVENTS.match(parts[-1]):
        parts[-1] = "events.out.tfevents.*"
    return "/".join(parts)


def run_files(api: Api, run_id: str) -> dict[str, str]:
    """``{masked path: digest}`` of the files a wrapped run wrote (its ``files`` state)."""
    doc = api.state(run_id).get("files") or {}
    out: dict[str, str] = {}
    for item in doc.get("files") or []:
        if not isinstance(item, dict) or not isinstance(item.get("digest"), str):
            continue
        key = _file_key(str(item.get("path")))
        if key is None:
            continue
        name, n = key, 2
        while name in out:  # two files under masked folders: keep both, in order
            name, n = f"{key}#{n}", n + 1
        out[name] = item["digest"]
    return out


def compare_files(api: Api, run_a: str, run_b: str) -> list[FileComparison]:
    """Every file either run wrote, by masked path."""
    fa, fb = run_files(api, run_a), run_files(api, run_b)
    return [
        FileComparison(n, fa.get(n), fb.get(n), n.lower().endswith(_VOLATILE_SUFFIXES))
        for n in sorted(set(fa) | set(fb))
    ]


def normalise_line(text: str) -> str:
    """A console line with time stamps, durations, paths and addresses masked."""
    for pattern, mask in _MASKS:
        text = pattern.sub(mask, text)
    return text.rstrip()


@dataclass(frozen=True, slots=True)
class ConsoleComparison:
    """Two runs' console output, normalised and compared line by line.

    Attributes:
        lines: Lines of the original and the other run.
        first_difference: ``(line number from 1, original's text, other's text)``, or None.
    """

    lines: tuple[int, int]
    first_difference: tuple[int, str | None, str | None] | None

    @property
    def empty(self) -> bool:
        """Neither run printed anything."""
        return self.lines == (0, 0)

    def describe(self) -> str:
        """One line for people."""
        if self.first_difference is None:
            return f"the console output ({self.lines[0]} lines, normalised) is the same"
        n, a, b = self.first_difference
        return f"the console differs at line {n}: {a!r} vs {b!r}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"lines": list(self.lines), "first_difference": self.first_difference}


def compare_console(api: Api, run_a: str, run_b: str) -> ConsoleComparison:
    """Compare the two runs' console output (both streams, in order), normalised."""
    la = [normalise_line(c.text) for c in api.console(run_a)]
    lb = [normalise_line(c.text) for c in api.console(run_b)]
    la = [t for t in la if t]
    lb = [t for t in lb if t]
    for i, (a, b) in enumerate(zip(la, lb, strict=False)):
        if a != b:
            return ConsoleComparison((len(la), len(lb)), (i + 1, a[:200], b[:200]))
    if len(la) != len(lb):
        n = min(len(la), len(lb))
        text_a = la[n][:200] if n < len(la) else None
        text_b = lb[n][:200] if n < len(lb) else None
        return ConsoleComparison((len(la), len(lb)), (n + 1, text_a, text_b))
    return ConsoleComparison((len(la), len(lb)), None)


def _where(error: dict[str, Any]) -> tuple[str, str, str] | None:
    """(type, file name, line) of a recorded error."""
    kind = error.get("type")
    location = str(error.get("location") or error.get("where") or "")
    match = re.search(r"([^/\\]+):(\d+)", location)
    if not kind:
        return None
    return str(kind), match.group(1) if match else "", match.group(2) if match else ""


def same_failure(api: Api, run_a: str, run_b: str) -> str | None:
    """How both runs failed, when they failed the same way (same exception type, file name
    and line); else None."""
    ea, eb = api.state(run_a).get("error"), api.state(run_b).get("error")
    if not isinstance(ea, dict) or not isinstance(eb, dict):
        return None
    wa, wb = _where(ea), _where(eb)
    if wa is None or wa != wb:
        return None
    kind, name, line = wa
    return f"{kind} at {name}:{line}" if name else kind
