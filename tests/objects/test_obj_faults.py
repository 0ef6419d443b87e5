"""Fault injection over the object layer: build, checkout and transfers with every I/O call
failing in turn (see tests/data/test_data_faults.py for the data commands on top).

Each workload runs once to count its I/O calls under its directory, then once per call with
that call failing (ENOSPC or EIO), from a fresh state each time, then again without faults.
After the fault: the error is the injected OSError or an MltrailError (nothing else: a
cleanup that breaks shows up here), every object under a real name hashes to it, no temp file
is left in a store or a destination, a destination file is absent or whole. After the retry:
the result is the clean run's. The link modes the data commands do not reach on ext4 are
covered here: ``copy`` (put_bytes, sendfile into a checkout temp) and a non-atomic fsspec
remote (``local://``: temp key + move). ``MLTRAIL_FAULTS_FULL=1`` adds a 5 MiB file (the
large-object paths) and the "sticky" mode (the disk stays full).
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from mltrail.errors import MltrailError
from mltrail.objects.build import build
from mltrail.objects.cache import Cache
from mltrail.objects.checkout import checkout
from mltrail.objects.local import LocalObjectStore
from mltrail.objects.registry import open_object_store
from mltrail.objects.transfer import push
from mltrail.testing.faults import FaultInjector

if TYPE_CHECKING:
    from collections.abc import Callable

FULL = os.environ.get("MLTRAIL_FAULTS_FULL") == "1"


def _files() -> dict[str, bytes]:
    files = {"a.txt": b"a" * 300, "s/b.bin": bytes(range(200)), "s/t/c": b"c" * 10, "e": b""}
    if FULL:
        files["big.bin"] = bytes(range(253)) * 20_000  # > 4 MiB
    return files


def _make(root: Path) -> Path:
    data = root / "data"
    for rel, content in _files().items():
        p = data / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content)
    return data


def _fresh(base: Path) -> Path:
    if base.exists():
        for folder, _d, _f in os.walk(base):
            os.chmod(folder, 0o755)
        shutil.rmtree(base)
    base.mkdir(parents=True)
    return base


def _verify_store(root: Path) -> set[str]:
    odb = LocalObjectStore(root)
    found = set(odb.iter_digests())
    for d in found:
        odb.verify(d)
    return found


def _temps(root: Path) -> list[Path]:
    return [p for p in root.rglob(".tmp-*")]


def _whole(dest: Path) -> None:
    for rel, content in _files().items():
        p = dest / rel
        if p.exists():
            assert p.read_bytes() == content, rel


def _build_copy(base: Path) -> Callable[[], object]:
    data = _make(base)
    cache = Cache(base / "cache", link_mode="copy")

    def run() -> object:
        try:
            return build(data, cache).digest
        finally:
            cache.close()

    return run


def _check_build(base: Path, complete: bool) -> None:
    found = _verify_store(base / "cache")
    if complete:
        assert len(found) == len(_files()) + 1  # the files and the tree
    _whole(base / "data")


def _checkout_copy(base: Path) -> Callable[[], object]:
    data = _make(base)
    with Cache(base / "cache", link_mode="copy") as c:
        digest = build(data, c).digest
    shutil.rmtree(data)
    cache = Cache(base / "cache", link_mode="copy")

    def run() -> object:
        try:
            return checkout(digest, cache, base / "data")
        finally:
            cache.close()

    return run


def _check_checkout(base: Path, complete: bool) -> None:
    _verify_store(base / "cache")
    _whole(base / "data")
    if complete:
        assert all((base / "data" / rel).exists() for rel in _files())


def _push_local_fsspec(base: Path) -> Callable[[], object]:
    data = _make(base)
    with Cache(base / "cache", link_mode="copy") as c:
        digest = build(data, c).digest
    cache = Cache(base / "cache", link_mode="copy")
    remote = open_object_store(f"local://{base / 'remote'}")  # fsspec, not atomic: temp key + move

    def run() -> object:
        try:
            return push(cache, remote, [digest], progress=False).transferred
        finally:
            cache.close()

    return run


def _check_push(base: Path, complete: bool) -> None:
    _verify_store(base / "cache")
    found = _verify_store(base / "remote") if (base / "remote").exists() else set()
    if complete:
        assert len(found) == len(_files()) + 1


WORKLOADS: dict[str, tuple[Callable[[Path], Callable[[], object]], Callable[[Path, bool], None]]]
WORKLOADS = {
    "build-copy": (_build_copy, _check_build),
    "checkout-copy": (_checkout_copy, _check_checkout),
    "push-fsspec": (_push_local_fsspec, _check_push),
}


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_object_layer_survives_every_io_fault(name: str, tmp_path: Path) -> None:
    """Every I/O call of the workload failing in turn: only the injected error or an
    MltrailError comes out, stores hold only whole objects, no temp file stays, and the
    retry gives the clean result."""
    prepare, check = WORKLOADS[name]
    base = tmp_path / "w"
    op = prepare(_fresh(base))
    with FaultInjector(base) as counter:
        op()
    check(base, True)
    modes = [(errno.ENOSPC, False), (errno.EIO, False)]
    if FULL:
        modes += [(errno.ENOSPC, True), (errno.EIO, True)]
    fired = 0
    for errno_, sticky in modes:
        for n in range(1, counter.count + 1):
            op = prepare(_fresh(base))
            raised: BaseException | None = None
            with FaultInjector(base, fail_at=n, errno_=errno_, sticky=sticky) as faults:
                try:
                    op()
                except (OSError, MltrailError) as exc:
                    raised = exc
            where = (name, n, errno.errorcode[errno_], faults.fired)
            if isinstance(raised, OSError):  # the injected one, nothing else
                assert raised.errno == errno_, (where, raised)
            fired += bool(faults.fired)
            check(base, False)
            assert _temps(base) == [], where
            op_retry = prepare_retry(base, name)
            op_retry()
            check(base, True)
            assert _temps(base) == [], where
    print(f"\nobject faults {name}: {counter.count} I/O calls, {fired} faults fired")  # noqa: T201
    assert fired == counter.count * len(modes)


def prepare_retry(base: Path, name: str) -> Callable[[], object]:
    """The same operation again on the state the fault left (not a fresh one)."""
    if name == "build-copy":
        cache = Cache(base / "cache", link_mode="copy")
        return lambda: _closing(cache, lambda: build(base / "data", cache))
    with Cache(base / "cache", link_mode="copy") as c:
        digest = build_digest(c, base)
    if name == "checkout-copy":
        cache = Cache(base / "cache", link_mode="copy")
        return lambda: _closing(cache, lambda: checkout(digest, cache, base / "data"))
    cache = Cache(base / "cache", link_mode="copy")
    remote = open_object_store(f"local://{base / 'remote'}")
    return lambda: _closing(cache, lambda: push(cache, remote, [digest], progress=False))


def build_digest(cache: Cache, base: Path) -> str:
    """The tree digest the workload's data has (the only tree in the cache)."""
    (tree,) = [d for d in cache.iter_digests() if d.endswith(".tree")]
    return tree


def _closing(cache: Cache, fn: Callable[[], object]) -> object:
    try:
        return fn()
    finally:
        cache.close()
