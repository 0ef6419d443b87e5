"""The cache lock, temp names and their sweeping, failure cleanup in the writer, fsck, and the
listing checks that make a refused build side-effect free."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mltrail.errors import StoreError, UnsafePathError
from mltrail.objects._fs import describe_os_error, is_stale_temp, temp_name
from mltrail.objects.build import build
from mltrail.objects.cache import Cache
from mltrail.objects.digest import hash_bytes
from mltrail.objects.fsck import fsck
from mltrail.objects.fsspec_store import FsspecObjectStore
from mltrail.objects.gc import collect
from mltrail.objects.layout import object_key
from mltrail.objects.local import LocalObjectStore
from mltrail.objects.registry import open_object_store
from mltrail.objects.transfer import push
from mltrail.testing.faults import FaultInjector

MakeTree = Callable[[dict[str, bytes | str]], Path]


def _dead_temp_name(final: str = "feedfacefeedface") -> str:
    """A temp name made by a process that has exited (its pid is free)."""
    code = f"from mltrail.objects._fs import temp_name; print(temp_name({final!r}))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_temp_names_say_who_wrote_them() -> None:
    """A live writer's temp is not stale (for a day); a dead one's is at once; another
    host's or an old-style name only past the grace period; a non-temp name never."""
    mine = temp_name("abcdef0123456789abcdef")
    assert mine.startswith(".tmp-h") and mine.endswith("-abcdef0123456789")
    assert temp_name("x") != temp_name("x")
    assert not is_stale_temp(mine, 5 * 3600.0)  # however long the write takes...
    assert is_stale_temp(mine, 2 * 86400.0)  # ...but a day means the pid was reused
    assert is_stale_temp(_dead_temp_name(), 0.0)
    foreign = ".tmp-h000000000000-1-deadbeef-0-abcdef"
    assert not is_stale_temp(foreign, 60.0) and is_stale_temp(foreign, 7200.0)
    assert not is_stale_temp(foreign, None)
    old_style = ".tmp-12345-deadbeef-3-abcdef"
    assert not is_stale_temp(old_style, 10.0) and is_stale_temp(old_style, 3601.0)
    assert not is_stale_temp("abcdef", 10**9)


def test_forked_child_gets_its_own_temp_prefix() -> None:
    """A forked process names its temps with its own pid (never the parent's)."""
    parent = temp_name("x").split("-")[2]
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(w, temp_name("x").encode())
        os._exit(0)
    os.close(w)
    child = os.read(r, 200).decode()
    os.close(r)
    os.waitpid(pid, 0)
    assert child.split("-")[2] == str(pid) != parent


def test_os_errors_in_words() -> None:
    """ENOSPC reads "disk full (ENOSPC) at DIR" (a temp file is shown as its directory)."""
    exc = OSError(errno.ENOSPC, "No space left on device", "/c/blake3/ab/.tmp-h1-2-3-4-x")
    assert describe_os_error(exc) == "disk full (ENOSPC) at /c/blake3/ab"
    assert describe_os_error(OSError(errno.EIO, "x")) == "I/O error (EIO)"


def test_lock_shared_writers_exclusive_gc(tmp_path: Path) -> None:
    """Shared holders coexist; exclusive waits for them (on_wait told once), times out with
    a StoreError, and gets the lock once they are gone."""
    with Cache(tmp_path / "c") as cache:
        waited: list[int] = []
        with cache.lock(), cache.lock():
            busy = cache.lock(exclusive=True, timeout_s=0.1, on_wait=lambda: waited.append(1))
            with pytest.raises(StoreError, match="still held"), busy:
                pass  # pragma: no cover
            assert waited == [1]
        got = threading.Event()
        with cache.lock(exclusive=True):

            def writer() -> None:
                with cache.lock():
                    got.set()

            t = threading.Thread(target=writer)
            t.start()
            time.sleep(0.1)
            assert not got.is_set()  # the writer waits for gc
        t.join(5)
        assert got.is_set()


def test_lock_dies_with_its_process(tmp_path: Path) -> None:
    """A SIGKILLed holder never blocks gc: the kernel drops its flock."""
    root = tmp_path / "c"
    code = (
        "import sys, time; from mltrail.objects.lock import cache_lock\n"
        f"with cache_lock({str(root)!r}):\n    print('held', flush=True); time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"held\n"
    with Cache(root) as cache:
        with pytest.raises(StoreError), cache.lock(exclusive=True, timeout_s=0.05):
            pass  # pragma: no cover
        proc.kill()
        proc.communicate()
        with cache.lock(exclusive=True, timeout_s=5):
            pass


def test_failed_batch_gives_hardlinked_files_their_mode_back(
    tmp_path: Path, make_tree: MakeTree
) -> None:
    """A build that fails mid-batch (ENOSPC at a rename) leaves no temp, no object, and the
    workspace files writable as before; the objects renamed before the failure are whole."""
    root = make_tree({f"f{i}": f"content {i}".encode() for i in range(6)})
    modes = {p.name: p.stat().st_mode for p in root.iterdir()}
    with Cache(tmp_path / "c", link_mode="hardlink") as cache:
        with FaultInjector(tmp_path / "c", fail_at=3, ops={"rename"}), pytest.raises(OSError):
            build(root, cache)
        stored = set(cache.iter_digests())
        assert len(stored) == 2  # two renames made it
        for d in stored:
            cache.verify(d)
        assert list((tmp_path / "c").rglob(".tmp-*")) == []
        for p in root.iterdir():
            if (p.stat().st_ino, p.stat().st_dev) in {
                (cache.path(d).stat().st_ino, cache.path(d).stat().st_dev) for d in stored
            }:
                continue  # it *is* a cache object now: read-only, as the cache's are
            assert p.stat().st_mode == modes[p.name], p
        assert len(build(root, cache).tree or ()) == 6


def test_refused_build_touches_nothing(tmp_path: Path, make_tree: MakeTree) -> None:
    """An escaping symlink is refused before any file is hashed, linked or made read-only."""
    root = make_tree({"a": b"1", "b": b"2", "up": "->../../x"})
    before = {p.name: (p.lstat().st_mode, p.lstat().st_nlink) for p in root.iterdir()}
    with Cache(tmp_path / "c", link_mode="hardlink") as cache:
        with pytest.raises(UnsafePathError, match="up"):
            build(root, cache)
        assert list(cache.iter_digests()) == []
    assert {p.name: (p.lstat().st_mode, p.lstat().st_nlink) for p in root.iterdir()} == before


def test_writer_sweeps_dead_temps_where_it_writes(tmp_path: Path) -> None:
    """A commit removes a dead writer's temps in its shard directories, not live ones."""
    db = LocalObjectStore(tmp_path / "db")
    d = hash_bytes(b"payload")
    shard = Path(db.path_str(d)).parent
    shard.mkdir(parents=True)
    dead = shard / _dead_temp_name()
    live = shard / temp_name("cafe")
    dead.write_bytes(b"half")
    live.write_bytes(b"half")
    db.add_bytes(b"payload")
    assert not dead.exists() and live.exists()


def test_fsspec_remote_temps_swept_by_push_and_gc(tmp_path: Path) -> None:
    """On a non-atomic fsspec remote (temp key + move), a push sweeps the dead temps where it
    writes and gc every stale one; a fresh temp of another machine stays."""
    remote = open_object_store(f"local://{tmp_path / 'remote'}")
    assert isinstance(remote, FsspecObjectStore) and not remote.atomic_put
    with Cache(tmp_path / "c") as cache:
        d = cache.add_bytes(b"object")
        shard = Path(remote.shard_dir(d))
        shard.mkdir(parents=True)
        dead = shard / _dead_temp_name()
        dead.write_bytes(b"x")
        push(cache, remote, [d], progress=False)
        assert not dead.exists() and remote.exists(d)
    elsewhere = shard / ".tmp-h000000000000-7-aaaaaaaa-0-abc"
    stale = shard / ".tmp-h000000000000-7-aaaaaaaa-1-abc"
    for p in (elsewhere, stale):
        p.write_bytes(b"x")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    got = collect(remote, {d})
    assert got.temps == 1 and elsewhere.exists() and not stale.exists()
    assert got.removed == [] and got.kept == 1


def test_gc_grace_on_a_remote_and_trees_first(tmp_path: Path, make_tree: MakeTree) -> None:
    """A remote's young objects are spared by the grace window (by the listing's mtime);
    without it, trees go before their files."""
    remote = open_object_store(f"local://{tmp_path / 'remote'}")
    with Cache(tmp_path / "c") as cache:
        r = build(make_tree({"a": b"a", "b": b"b"}), cache)
        push(cache, remote, [r.digest], progress=False)
    assert collect(remote, set(), grace_s=3600).removed == []
    removed: list[str] = []
    original = remote.remove

    def spy(digest: str) -> None:
        removed.append(digest)
        original(digest)

    remote.remove = spy  # type: ignore[method-assign]
    got = collect(remote, set())
    assert removed[0] == r.digest and len(removed) == 3 and got.bytes > 0


def test_fsck_finds_corrupt_missing_and_unsafe(tmp_path: Path, make_tree: MakeTree) -> None:
    """fsck hashes every object: a flipped byte is corrupt, a file a tree lists but the
    store lacks is missing (naming who needs it), an unsafe manifest is corrupt."""
    import json

    with Cache(tmp_path / "c", link_mode="copy") as cache:
        r = build(make_tree({"a": b"aaa", "s/b": b"bbb"}), cache)
        assert fsck(cache, {r.digest: "data"}).ok
        a, b = hash_bytes(b"aaa"), hash_bytes(b"bbb")
        pa = cache.path(a)
        pa.chmod(0o644)
        pa.write_bytes(b"aab")
        cache.path(b).unlink()
        bad = json.dumps({"entries": [["../x", a, 3, 0o100644]], "format": "mltrail.tree/1"})
        evil = cache.add_bytes(bad.encode(), tree=True)
        report = fsck(cache, {r.digest: "data", hash_bytes(b"zzz"): "z.bin"})
        assert [p.digest for p in report.corrupt] == sorted([a, evil])
        assert {p.digest: p.detail for p in report.missing} == {
            b: "needed by data/s/b",
            hash_bytes(b"zzz"): "needed by z.bin",
        }
        assert report.corrupt[[p.digest for p in report.corrupt].index(a)].path == str(pa)
        assert not report.ok and report.checked == 3


def test_fsck_of_a_memory_remote(tmp_path: Path) -> None:
    """fsck over fsspec: objects fetched in batches and hashed; a tampered one is found."""
    import uuid

    remote = open_object_store(f"memory://fsck-{uuid.uuid4().hex}")
    assert isinstance(remote, FsspecObjectStore)
    good = remote.add_bytes(b"good")
    bad = remote.add_bytes(b"bad!")
    remote.fs.pipe_file(remote.path(bad), b"evil")
    report = fsck(remote, {good: "g"})
    assert report.checked == 2 and [p.digest for p in report.corrupt] == [bad]
    assert report.corrupt[0].path == f"{remote.url}/{object_key(bad)}"


def test_dead_writers_marker_makes_the_next_commit_sweep_everywhere(tmp_path: Path) -> None:
    """A batch killed mid-way leaves its marker in ``.writers``: the next commit, whatever
    shard it writes to (or none), sweeps every shard directory and drops the marker; a live
    writer's marker changes nothing."""
    db = LocalObjectStore(tmp_path / "db")
    far = tmp_path / "db" / "blake3" / "00"
    far.mkdir(parents=True)
    orphan = far / _dead_temp_name()
    orphan.write_bytes(b"half")
    live_marker = db.register_writer()  # this process: alive
    db.add_bytes(b"elsewhere")
    assert orphan.exists()  # a per-directory sweep does not reach it, no dead marker yet
    (tmp_path / "db" / ".writers" / _dead_temp_name("writer")).write_bytes(b"")
    with db.writer():
        pass  # even a batch that writes nothing
    assert not orphan.exists()
    assert os.listdir(tmp_path / "db" / ".writers") == [os.path.basename(live_marker)]
    db.unregister_writer(live_marker)
    assert os.listdir(tmp_path / "db" / ".writers") == []
