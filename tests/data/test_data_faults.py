"""Fault injection over the data commands: every I/O call of add, push, pull and checkout
fails once, in turn, and each time nothing is lost, nothing half-written is visible, the user
gets one clear line, and running the command again succeeds with the right content.

How (SQLite's discipline, with :class:`mltrail.testing.faults.FaultInjector`): each stage
(``data add`` of a small tree, ``push`` to a local-directory remote, ``pull`` into an empty
cache, ``checkout`` of deleted data) is run once from a saved state to count the I/O calls it
makes under the work directory (workspace, cache and remote); then, for every ``N`` in
``1..count``, the state is restored, the command runs with the ``N``-th call failing (ENOSPC
or EIO), the invariants are checked, and the command runs again without faults. Commands go
through the console script's own entry (:func:`mltrail.cli._entry.run_fast`), so the message
checked is the one a user sees.

Invariants after each fault: every object file in the cache and the remote hashes to its
name; no temp file is left anywhere; every pointer file parses and names data that is all
in the cache; workspace files are either absent or whole (right content); the command
exited 0, or 1 with one ``error:`` line naming the cause (never a raw OSError). After the
retry: exit 0, and pointers, cache, remote and workspace are exactly what a clean run gives.

Modes:

- default (CI): a small tree (4 files, 2 directories), each fault point with ENOSPC and with
  EIO; about 15-30 s on two shared cores;
- ``MLTRAIL_FAULTS_FULL=1``: a larger tree with a 5 MiB file (the large-object paths:
  ``copyfile``/``sendfile``, mmap hashing), and every fault point with ENOSPC and EIO, each
  once and "sticky" (the disk stays full until the retry): four runs per point.

The number of fault points exercised is printed (``pytest -s``) and written to
``faults-<stage>.json`` in the test's tmp directory (``MLTRAIL_FAULTS_REPORT=DIR`` copies it
there too).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from mltrail.cli._entry import run_fast
from mltrail.data.config import add_remote
from mltrail.data.pointer import POINTER_SUFFIX, read_pointer
from mltrail.objects.local import LocalObjectStore
from mltrail.objects.transfer import closure
from mltrail.testing.faults import FaultInjector
from mltrail.testing.repos import git, init_repo

pytestmark = pytest.mark.slow

FULL = os.environ.get("MLTRAIL_FAULTS_FULL") == "1"
STAGES = ("add", "push", "pull", "checkout")
DATA = ("d", "f.bin")


def _files() -> dict[str, bytes]:
    files = {
        "d/a.txt": b"alpha\n" * 50,
        "d/sub/b.bin": bytes(range(256)) * 8,
        "d/run.sh": b"#!/bin/sh\necho hi\n",
        "f.bin": b"F" * 3000,
    }
    if FULL:
        files.update({f"d/many/m{i}.txt": f"m{i}".encode() * 40 for i in range(12)})
        files["d/big.bin"] = bytes(range(251)) * (5 * 4177)  # > 4 MiB: the large paths
    return files


def _write(repo: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        p = repo / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        if rel.endswith(".sh"):
            p.chmod(0o755)


def _rmtree(path: Path) -> None:
    if not path.exists():
        return
    for folder, _dirs, _files in os.walk(path):
        os.chmod(folder, 0o755)
    shutil.rmtree(path)


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = run_fast(argv)
    assert code is not None, argv
    return code, capsys.readouterr().err


class _Work:
    """The work directory (repo + remote) and a saved copy of it to restore from."""

    def __init__(self, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.base = tmp / "work"
        self.saved = tmp / "saved"
        self.repo = self.base / "repo"
        self.remote = self.base / "remote"
        self.cache = self.repo / ".mltrail" / "cache"
        self.mp = monkeypatch

    def save(self) -> None:
        _rmtree(self.saved)
        self._copy(self.base, self.saved)

    def restore(self) -> None:
        self.mp.chdir(self.base.parent)
        _rmtree(self.base)
        self._copy(self.saved, self.base)
        self.mp.chdir(self.repo)

    @staticmethod
    def _copy(src: Path, dst: Path) -> None:
        import subprocess

        subprocess.run(["cp", "-a", str(src), str(dst)], check=True)  # keeps hardlinks, modes


def _setup(stage: str, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> _Work:
    """The state before ``stage``."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp / "no-global-gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    w = _Work(tmp, monkeypatch)
    init_repo(w.repo, {"README.md": "faults\n"})
    monkeypatch.chdir(w.repo)
    add_remote(w.repo / ".mltrail", "origin", "../remote", default=True)
    _write(w.repo, _files())
    _age(w.repo)
    git(w.repo, "add", "-A")  # the data is not ignored yet: commit only the config
    git(w.repo, "reset", "-q", "--", *DATA)
    git(w.repo, "commit", "-q", "-m", "config")
    if stage != "add":
        assert run_fast(["data", "add", "-q", *DATA]) == 0
        git(w.repo, "add", "-A")
        git(w.repo, "commit", "-q", "-m", "pointers")
    if stage == "pull":
        assert run_fast(["data", "push", "-q"]) == 0
        _rmtree(w.cache)
    if stage in ("pull", "checkout"):
        for rel in DATA:
            p = w.repo / rel
            _rmtree(p) if p.is_dir() else p.unlink()
    w.save()
    return w


def _age(root: Path) -> None:
    """Date the data 10 s back (as real data is): hash-index entries are then recorded."""
    for p in root.rglob("*"):
        if ".git" in p.parts:
            continue
        st = p.lstat()
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns - 10**10), follow_symlinks=False)


_ARGV = {
    "add": ["data", "add", "-q", *DATA],
    "push": ["data", "push", "-q"],
    "pull": ["data", "pull", "-q"],
    "checkout": ["data", "checkout", "-q"],
}


# -- invariants -------------------------------------------------------------------------


def _stores(w: _Work) -> list[LocalObjectStore]:
    return [LocalObjectStore(p) for p in (w.cache, w.remote) if p.exists()]


def _check_objects(w: _Work) -> dict[str, set[str]]:
    """Every object under a real name hashes to it; the digests of each store."""
    out: dict[str, set[str]] = {}
    for odb in _stores(w):
        found = set(odb.iter_digests())
        for digest in found:
            odb.verify(digest)
        out[odb.url] = found
    return out


def _temps(w: _Work) -> list[str]:
    left = []
    for folder, dirs, files in os.walk(w.base):
        dirs[:] = [d for d in dirs if d != ".git"]
        left += [
            os.path.join(folder, f)
            for f in files
            if f.startswith(".tmp-") or (f.startswith(".") and f.endswith(".tmp"))
        ]
    return left


def _pointer_digests(w: _Work, *, cached: bool = True) -> dict[str, str]:
    """Each pointer file parses, and (``cached``) all it names is in the cache."""
    out: dict[str, str] = {}
    cache = LocalObjectStore(w.cache)
    for rel in DATA:
        pf = w.repo / (rel + POINTER_SUFFIX)
        if not pf.exists():
            continue
        digest = read_pointer(pf).digest
        out[rel] = digest
        if not cached:
            continue
        missing: list[str] = []
        need = closure(cache, [digest], missing=missing)
        assert missing == [] and need.keys() <= cache.exists_many(need), (rel, missing)
    return out


def _check_workspace(w: _Work, files: dict[str, bytes], *, complete: bool) -> None:
    """Data files are whole: present ones have the right bytes (and nothing else is there)."""
    for rel, data in files.items():
        p = w.repo / rel
        if p.exists():
            assert p.read_bytes() == data, rel
            assert bool(p.stat().st_mode & stat.S_IXUSR) == rel.endswith(".sh"), rel
        else:
            assert not complete, f"{rel} missing"
    objects = {
        (st.st_dev, st.st_ino)
        for odb in _stores(w)
        for st in (os.stat(odb.path_str(d)) for d in odb.iter_digests())
    }
    for rel in files:  # read-only means "this file is a cache object" (hardlinked), never
        p = w.repo / rel  # a side effect of an add that failed before storing it
        if p.exists() and not p.stat().st_mode & stat.S_IWUSR:
            assert (p.stat().st_dev, p.stat().st_ino) in objects, f"{rel} read-only"
    for root in DATA:
        p = w.repo / root
        if p.is_dir():
            extra = {
                f.relative_to(w.repo).as_posix() for f in p.rglob("*") if not f.is_dir()
            } - set(files)
            assert not extra, extra


def _clean_state(w: _Work) -> dict[str, object]:
    return {
        "pointers": _pointer_digests(w),
        "objects": _check_objects(w),
    }


# -- the runs ---------------------------------------------------------------------------


def _modes() -> list[tuple[int, bool]]:
    modes = [(errno.ENOSPC, False), (errno.EIO, False)]
    return modes + [(errno.ENOSPC, True), (errno.EIO, True)] if FULL else modes


def _one_fault(
    w: _Work,
    stage: str,
    n: int,
    errno_: int,
    sticky: bool,
    expected: dict[str, object],
    capsys: pytest.CaptureFixture[str],
) -> bool:
    """Run ``stage`` with the ``n``-th I/O call failing; check; retry; check. Fired?"""
    files = _files()
    w.restore()
    where = f"{stage}: fault #{n} ({errno.errorcode[errno_]}{', sticky' if sticky else ''})"
    with FaultInjector(w.base, fail_at=n, errno_=errno_, sticky=sticky) as faults:
        try:
            code, err = _run(_ARGV[stage], capsys)
        except OSError as exc:  # pragma: no cover - the bug this suite is here to catch
            pytest.fail(f"{where}: a raw OSError reached the user: {exc!r}")
    point = faults.fired[0] if faults.fired else None
    where += f" at {point.op} {point.path}" if point else " (did not fire)"
    assert code in (0, 1), where
    if code == 1:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (where, err)
        assert "Traceback" not in err, (where, err)
        assert "disk full" in err or "I/O error" in err, (where, err)
    _check_objects(w)
    assert _temps(w) == [], (where, _temps(w))
    _pointer_digests(w, cached=stage != "pull")  # a pull fills the cache for its pointers
    if stage == "add":
        _check_workspace(w, files, complete=True)
    else:
        _check_workspace(w, files, complete=False)
    code, err = _run(_ARGV[stage], capsys)
    assert code == 0, (where, "retry", err)
    assert _clean_state(w) == expected, where
    assert _temps(w) == [], where
    _check_workspace(w, files, complete=True)
    return point is not None


@pytest.mark.parametrize("stage", STAGES)
def test_every_io_fault_is_survived(
    stage: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """For each I/O call of the stage, failing it leaves consistent stores, no temp files,
    no partial pointer or data file, one clear error line, and a retry that succeeds."""
    w = _setup(stage, tmp_path, monkeypatch)
    w.restore()
    with FaultInjector(w.base) as counter:
        code, err = _run(_ARGV[stage], capsys)
    assert code == 0, err
    count = counter.count
    expected = _clean_state(w)
    assert count > 0
    exercised = 0
    runs = 0
    for errno_, sticky in _modes():
        for n in range(1, count + 1):
            exercised += _one_fault(w, stage, n, errno_, sticky, expected, capsys)
            runs += 1
    report = {
        "stage": stage,
        "mode": "full" if FULL else "default",
        "fault_points": count,  # I/O calls of the stage, each made to fail in turn
        "fault_runs": runs,  # points x modes (errno, sticky)
        "fired": exercised,
        "ops": sorted({op for op, _ in counter.seen}),
    }
    _report(tmp_path, stage, report)
    assert exercised >= runs * 0.9, report  # the workload is deterministic


def _report(tmp_path: Path, stage: str, report: dict[str, object]) -> None:
    text = json.dumps(report)
    (tmp_path / f"faults-{stage}.json").write_text(text)
    extra = os.environ.get("MLTRAIL_FAULTS_REPORT")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        (Path(extra) / f"faults-{stage}.json").write_text(text)
    print(f"\nfault injection {text}")  # noqa: T201
