"""``audit verify``: the auditor's checks of a store's trail, first failure named.

In order: every entry's sequence number (gaps, reordering), its hash (its fields), its link
(``prev_hash``), its payload's digest; then the Merkle root of every checkpoint (the store's,
the off-box copies, one given file) against the entries, their signatures against the public
key, consistency proofs between consecutive checkpoints, and a log shorter than a checkpoint
(truncation, a database rolled back); then the live database against the trail replayed: every
row as the last entry that wrote it says, every metric series as the concatenation of its
batches' digests, every blob's bytes against its digest. A row the trail never wrote is a
forgery too.
"""

from __future__ import annotations

import gc
import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mltrail.audit.entries import GENESIS, entry_hash, metric_digest
from mltrail.audit.merkle import MerkleTree, verify_consistency

if TYPE_CHECKING:
    from collections.abc import Iterable

    pass

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from mltrail.audit.base import AuditLog
    from mltrail.audit.checkpoints import Checkpoint

__all__ = ["LiveState", "Problem", "Report", "verify_log"]


@dataclass(slots=True)
class LiveState:
    """What the database holds now, in the trail's terms.

    ``rows``: table -> primary key values -> row values (normalised as the payloads record
    them, in the order of ``cols[table]``); ``series``: ((run id, key), (steps, timestamps,
    values)) packed little-endian in logging order, streamed one series at a time;
    ``blobs``: stored digest -> the SHA-256 of the bytes stored under it (``sha256:<hex>``).
    """

    rows: dict[str, dict[tuple[Any, ...], tuple[Any, ...]]] = field(default_factory=dict)
    cols: dict[str, tuple[str, ...]] = field(default_factory=dict)
    series: Iterable[tuple[tuple[str, str], tuple[bytes, bytes, bytes]]] = ()
    blobs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Problem:
    """One failed check: the entry (or None: no entry covers it) and why."""

    seq: int | None
    reason: str

    def __str__(self) -> str:
        where = f"entry {self.seq}" if self.seq is not None else "no entry"
        return f"{where}: {self.reason}"


@dataclass(slots=True)
class Report:
    """What ``audit verify`` found."""

    entries: int = 0
    checkpoints: int = 0
    signatures_checked: int = 0
    rows: int = 0
    series: int = 0
    blobs: int = 0
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No problem found."""
        return not self.problems

    @property
    def first(self) -> Problem | None:
        """The problem with the lowest sequence number (those without one last)."""
        if not self.problems:
            return None
        return min(self.problems, key=lambda p: (p.seq is None, p.seq if p.seq is not None else 0))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        first = self.first
        return {
            "ok": self.ok,
            "entries": self.entries,
            "checkpoints": self.checkpoints,
            "signatures_checked": self.signatures_checked,
            "rows": self.rows,
            "series": self.series,
            "blobs": self.blobs,
            "first_bad_seq": first.seq if first else None,
            "reason": first.reason if first else None,
            "problems": [{"seq": p.seq, "reason": p.reason} for p in self.problems],
            "notes": self.notes,
        }


#: what the replay expects of a row: the entry that wrote it last, its columns, its values
#: (None: deleted)
_Expected = tuple[int, tuple[str, ...], "tuple[Any, ...] | None"]


@dataclass(slots=True)
class _Replay:
    rows: dict[str, dict[tuple[Any, ...], _Expected]] = field(default_factory=dict)
    #: run id -> its metric batches in order: (entry, [(key, points)], digest)
    series: dict[str, list[tuple[int, list[tuple[str, int]], str]]] = field(default_factory=dict)
    blobs: dict[str, int] = field(default_factory=dict)

    def apply(self, seq: int, payload: dict[str, Any]) -> None:
        for table, spec in payload.get("rows", {}).items():
            mine = self.rows.get(table)
            if mine is None:
                mine = self.rows[table] = {}
            cols = tuple(spec["cols"])
            at = [cols.index(c) for c in spec["pk"]]
            for row in spec["rows"]:
                mine[tuple([row[i] for i in at])] = (seq, cols, tuple(row))
            for key in spec.get("deleted", ()):
                mine[tuple(key)] = (seq, cols, None)
        for batch in payload.get("metrics", ()):
            keys = [(str(k), int(n)) for k, n in batch["keys"]]
            self.series.setdefault(str(batch["run"]), []).append((seq, keys, str(batch["digest"])))


def verify_log(
    log: AuditLog,
    *,
    extra_checkpoints: Iterable[Checkpoint] = (),
    public_key: Ed25519PublicKey | None = None,
    live: bool = True,
) -> Report:
    """Check ``log`` (see the module doc); never raises on tampering, it reports."""
    # millions of small tuples and dicts, all kept: the cyclic collector would rescan them
    # over and over (it made a 10^5-entry verify five times slower)
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _verify(log, extra_checkpoints, public_key, live)
    finally:
        if collecting:
            gc.enable()


def _verify(
    log: AuditLog,
    extra_checkpoints: Iterable[Checkpoint],
    public_key: Ed25519PublicKey | None,
    live: bool,
) -> Report:
    report = Report()
    replay = _Replay()
    leaves: list[bytes] = []
    prev = GENESIS
    expected = 1
    broken = False
    # the hot loop of a 10^6-entry verify: tuple unpacking and local names, no attribute
    # lookups (each entry costs ~30 us of CPU here)
    sha256, loads, bytes_hex = hashlib.sha256, json.loads, bytes.fromhex
    add_leaf, apply, first_blob = leaves.append, replay.apply, replay.blobs.setdefault
    for seq, ts, actor, action, subject, payload, pdig, prev_hash, h, blobs in log.audit_entries():
        if not broken:
            why = None
            if seq != expected:
                gap = "missing" if seq > expected else "out of order"
                report.problems.append(Problem(expected, f"entry {gap} (next stored is {seq})"))
                broken = True
            elif entry_hash(seq, ts, actor, action, subject, pdig, blobs, prev_hash) != h:
                why = "the entry's hash does not match its fields (edited, renumbered or moved)"
            elif prev_hash != prev:
                why = "prev_hash does not match the previous entry's hash (link)"
            elif sha256(payload.encode()).hexdigest() != pdig:
                why = "the payload does not match its digest"
            if why is not None:
                report.problems.append(Problem(seq, why))
                broken = True
        prev = h
        expected = seq + 1
        add_leaf(sha256(b"\x00" + bytes_hex(h)).digest())
        try:
            apply(seq, loads(payload))
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            report.problems.append(Problem(seq, f"the payload is not a trail payload ({exc!r})"))
            continue
        for b in blobs:
            first_blob(b, seq)
    report.entries = len(leaves)
    tree = MerkleTree(leaves)
    _check_checkpoints(report, tree, [*log.audit_checkpoints(), *extra_checkpoints], public_key)
    if live:
        _check_live(report, replay, log.audit_live_state())
    return report


def _check_checkpoints(
    report: Report,
    tree: MerkleTree,
    checkpoints: list[Checkpoint],
    public_key: Ed25519PublicKey | None,
) -> None:
    n = tree.size
    unique = {(c.tree_size, c.root, c.timestamp_ms, c.signature): c for c in checkpoints}
    ordered = sorted(unique.values(), key=lambda c: (c.tree_size, c.timestamp_ms))
    report.checkpoints = len(ordered)
    if not ordered:
        report.notes.append(
            "no signed checkpoint: entries are chained but no root is signed "
            "(create a key with `mltrail audit init`)"
        )
    if public_key is None and ordered:
        report.notes.append("no public key: checkpoint signatures not checked")
    good: list[Checkpoint] = []
    for cp in ordered:
        if cp.tree_size > n:
            report.problems.append(
                Problem(
                    n + 1,
                    f"the log has {n} entries but a checkpoint signed at "
                    f"{cp.timestamp_ms} covers {cp.tree_size} (truncated or rolled back)",
                )
            )
            continue
        if public_key is not None:
            if not cp.verify_signature(public_key):
                report.problems.append(
                    Problem(
                        cp.tree_size,
                        f"checkpoint of {cp.tree_size} entries: the signature is not the "
                        f"given key's (key id {cp.key_id[:16]}...)",
                    )
                )
                continue
            report.signatures_checked += 1
        if tree.root(cp.tree_size).hex() != cp.root:
            report.problems.append(
                Problem(
                    cp.tree_size,
                    f"checkpoint of {cp.tree_size} entries: the Merkle root of entries "
                    f"1..{cp.tree_size} differs from the signed root (rewritten)",
                )
            )
            continue
        good.append(cp)
    for old, new in zip(good, good[1:], strict=False):
        proof = tree.consistency_proof(old.tree_size, new.tree_size)
        if not verify_consistency(
            old.tree_size,
            new.tree_size,
            bytes.fromhex(old.root),
            bytes.fromhex(new.root),
            proof,
        ):
            report.problems.append(
                Problem(
                    new.tree_size,
                    f"no consistency proof from checkpoint {old.tree_size} to {new.tree_size}",
                )
            )


def _check_live(report: Report, replay: _Replay, live: LiveState) -> None:
    problems = report.problems
    for name, seq in replay.blobs.items():
        report.blobs += 1
        actual = live.blobs.get(name)
        if actual is None:
            problems.append(Problem(seq, f"blob {name}: missing from the database"))
        elif actual != name:
            problems.append(Problem(seq, f"blob {name}: its bytes hash to {actual}"))
    tables = set(replay.rows) | set(live.rows)
    for table in sorted(tables):
        want = replay.rows.get(table, {})
        have = live.rows.get(table, {})
        live_cols = live.cols.get(table, ())
        report.rows += len(have)
        for pk, (seq, cols, row) in want.items():
            got = have.get(pk)
            if got == row and cols == live_cols:
                continue
            where = f"{table} {_show(pk)}"
            if row is None:
                if got is not None:
                    problems.append(Problem(seq, f"{where}: deleted by the trail, present"))
            elif got is None:
                problems.append(Problem(seq, f"{where}: row missing from the database"))
            elif _differs(cols, row, live_cols, got):
                diff = _diff(cols, row, live_cols, got)
                problems.append(Problem(seq, f"{where}: the row differs from the trail ({diff})"))
        for pk in have.keys() - want.keys():
            problems.append(Problem(None, f"{table} {_show(pk)}: a row the trail never wrote"))
    run: str | None = None
    run_series: dict[str, tuple[bytes, bytes, bytes]] = {}
    for (run_id, key), columns in live.series:  # grouped by run
        if run_id != run and run is not None:
            _check_run_series(report, run, replay.series.pop(run, []), run_series)
            run_series = {}
        run = run_id
        run_series[key] = columns
    if run is not None:
        _check_run_series(report, run, replay.series.pop(run, []), run_series)
    for run_id, batches in sorted(replay.series.items()):
        _check_run_series(report, run_id, batches, {})


def _check_run_series(
    report: Report,
    run_id: str,
    batches: list[tuple[int, list[tuple[str, int]], str]],
    series: dict[str, tuple[bytes, bytes, bytes]],
) -> None:
    """A run's series against the digests of the batches that wrote them, in order."""
    pos: dict[str, int] = {}
    last: dict[str, int] = {}
    for seq, keys, dig in batches:
        parts = []
        for key, n in keys:
            steps, stamps, vals = series.get(key, (b"", b"", b""))
            at = pos.get(key, 0)
            if (at + n) * 8 > len(steps):
                report.problems.append(
                    Problem(
                        seq,
                        f"metric {key!r} of run {run_id}: points missing "
                        f"({len(steps) // 8} stored, the trail has {at + n}+)",
                    )
                )
                return
            a, b = at * 8, (at + n) * 8
            views = memoryview(steps), memoryview(stamps), memoryview(vals)
            parts.append((views[0][a:b], views[1][a:b], views[2][a:b]))
            pos[key] = at + n
            last[key] = seq
        if metric_digest(parts) != dig:
            names = ", ".join(repr(k) for k, _ in keys)
            report.problems.append(
                Problem(
                    seq,
                    f"metrics of run {run_id} ({names}): the stored points differ from the "
                    "batch's digest",
                )
            )
            return
    for key, (steps, _, _) in sorted(series.items()):
        report.series += 1
        extra = len(steps) // 8 - pos.get(key, 0)
        if extra:
            report.problems.append(
                Problem(
                    last.get(key),
                    f"metric {key!r} of run {run_id}: {extra} points the trail never wrote",
                )
            )


def _show(pk: tuple[Any, ...]) -> str:
    return json.dumps(list(pk), ensure_ascii=False)


def _differs(
    cols: tuple[str, ...], row: tuple[Any, ...], live_cols: tuple[str, ...], got: tuple[Any, ...]
) -> bool:
    a, b = dict(zip(cols, row, strict=True)), dict(zip(live_cols, got, strict=True))
    return any(a.get(k) != b.get(k) for k in a.keys() | b.keys())


def _diff(
    cols: tuple[str, ...], row: tuple[Any, ...], live_cols: tuple[str, ...], got: tuple[Any, ...]
) -> str:
    a, b = dict(zip(cols, row, strict=True)), dict(zip(live_cols, got, strict=True))
    changed = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    return ", ".join(f"{c}: {a.get(c)!r} -> {b.get(c)!r}" for c in changed)
