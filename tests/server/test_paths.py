"""TESTS.md rows 22-31: client paths are logical names; bytes are stored by verified digest."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from srvhelp import Client, Server, new_run

from mltrail.errors import UnsafePathError
from mltrail.server.filestore import FileStore
from mltrail.server.paths import logical_path, resolve_under

UNSAFE = [
    "../../etc/passwd",  # 22
    "/etc/passwd",  # 23
    "C:\\x",
    "C:/x",
    "\\\\srv\\share",
    "..\\..\\win.ini",
    "a/../../b",  # 24
    "a/./b",
    "a//b",
    "a/",
    "%2e%2e%2f",  # 25 (after the one decode the query string gets)
    "%252e%252e%252f",
    "..%c0%af",
    "x#/../../",  # 26
    "x;/../",
    "x?a=../../",
    "a\x00.png",  # 27
    "a\nb",
    "..",
    ".",
    "x" * 1001,
    "a/" + "y" * 256,
]


def _snapshot(*roots: Path) -> set[tuple[str, int]]:
    out = set()
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                p = Path(dirpath, name)
                out.add((str(p), p.lstat().st_size if p.is_file() else -1))
    return out


def _put(api: Client, run_id: str, path: str, data: bytes, digest: str | None = None):  # type: ignore[no-untyped-def]
    digest = digest or "sha256:" + hashlib.sha256(data).hexdigest()
    return api.put(
        f"/api/v1/runs/{run_id}/files",
        params={"path": path},
        content=data,
        headers={"X-Content-Digest": digest},
    )


def test_unsafe_paths_are_400_and_write_nothing(api: Client, srv: Server, tmp_path: Path) -> None:
    run_id = new_run(api)["run_id"]
    before = _snapshot(tmp_path)
    for path in UNSAFE:
        r = _put(api, run_id, path, b"payload")
        assert r.status_code == 400, (path, r.text)
        assert r.json()["error"]["code"] == "unsafe_path"
        got = api.get(f"/api/v1/runs/{run_id}/files/content", params={"path": path})
        assert got.status_code in (400, 404)
    assert _put(api, run_id, "", b"payload").status_code == 422  # empty: a missing field
    assert _snapshot(tmp_path) == before
    assert api.get(f"/api/v1/runs/{run_id}/files").json() == {"files": []}


def test_raw_query_strings_are_decoded_once(api: Client, srv: Server, tmp_path: Path) -> None:
    """Row 25 with the encodings in the URL itself (not re-encoded by the client)."""
    run_id = new_run(api)["run_id"]
    before = _snapshot(tmp_path)
    data = b"payload"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    for raw in ("%2e%2e%2fx", "%252e%252e%252fx", "..%c0%af", "x%00.png", "%2Fetc%2Fpasswd"):
        r = api.put(
            f"/api/v1/runs/{run_id}/files?path={raw}",
            content=data,
            headers={"X-Content-Digest": digest},
        )
        assert r.status_code == 400, (raw, r.text)
    assert _snapshot(tmp_path) == before


def test_client_path_never_resolved_on_server(api: Client, srv: Server, tmp_path: Path) -> None:
    """The bug class: a client path joined to a server directory. Here no path is used at all.

    Accepted names that look like paths (deep folders, dots in names, a name equal to a
    file that exists on the server) only ever create the digest-named blob.
    """
    run_id = new_run(api)["run_id"]
    names = [
        "etc/passwd",
        "tmp/evil.sh",
        "a/b/c/d/e.txt",
        "..x",
        "x..",
        ".hidden",
        "files/sha256/zz",
    ]
    outside = _snapshot(tmp_path / "store") | {("/etc/passwd", os.stat("/etc/passwd").st_size)}
    for i, name in enumerate(names):
        data = f"content {i}".encode()
        r = _put(api, run_id, name, data)
        assert r.status_code == 201, r.text
        assert (
            api.get(f"/api/v1/runs/{run_id}/files/content", params={"path": name}).content == data
        )
    blobs = {p.relative_to(srv.artifacts) for p in srv.artifacts.rglob("*") if p.is_file()}
    expected = {
        Path("files/sha256") / h[:2] / h
        for h in (hashlib.sha256(f"content {i}".encode()).hexdigest() for i in range(len(names)))
    }
    assert blobs == expected  # nothing but digest-named blobs, nowhere else
    assert not any(p.is_symlink() for p in srv.artifacts.rglob("*"))  # row 28: no links made
    still = _snapshot(tmp_path / "store") | {("/etc/passwd", os.stat("/etc/passwd").st_size)}
    assert {x for x in still if not x[0].endswith(("-wal", "-shm", ".db"))} == {
        x for x in outside if not x[0].endswith(("-wal", "-shm", ".db"))
    }
    listed = [f["path"] for f in api.get(f"/api/v1/runs/{run_id}/files").json()["files"]]
    assert sorted(listed) == sorted(names)


def test_row_30_digest_or_size_mismatch_stores_nothing(api: Client, srv: Server) -> None:
    run_id = new_run(api)["run_id"]
    data = b"the real bytes"
    wrong = "sha256:" + hashlib.sha256(b"other bytes").hexdigest()
    r = _put(api, run_id, "f.bin", data, wrong)
    assert r.status_code == 400 and r.json()["error"]["code"] == "digest_mismatch"
    for bad in ("sha256:XYZ", "md5:" + "0" * 32, "sha256:" + "A" * 64):
        assert _put(api, run_id, "f.bin", data, bad).status_code == 422
    assert not [p for p in (srv.artifacts / "files").rglob("*") if p.is_file()]
    assert api.get(f"/api/v1/runs/{run_id}/files").json() == {"files": []}


def test_size_mismatch_in_the_store_itself(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    data = b"abc"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()

    async def chunks():  # type: ignore[no-untyped-def]
        yield data

    from mltrail.server.filestore import DigestMismatchError

    with pytest.raises(DigestMismatchError, match="declared"):
        asyncio.run(store.put(chunks(), digest, expected_size=4, max_bytes=10))
    assert asyncio.run(store.put(chunks(), digest, expected_size=3, max_bytes=10)) == (digest, 3)
    assert store.open_path(digest, 3).read_bytes() == data
    assert not list((tmp_path / "files" / "tmp").iterdir())


def test_startup_sweep_removes_temp_files_of_dead_uploads(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    host = store._host
    leftover = tmp_path / "files" / "tmp" / f"{host}-{dead.stdout.strip()}-abcd.part"
    leftover.write_bytes(b"half an upload")
    mine = tmp_path / "files" / "tmp" / f"{host}-{os.getpid()}-ffff.part"
    mine.write_bytes(b"in progress")
    foreign = tmp_path / "files" / "tmp" / "otherhost-1-aaaa.part"
    foreign.write_bytes(b"?")
    assert store.sweep() == 1
    assert not leftover.exists() and mine.exists() and foreign.exists()
    os.utime(foreign, (0, 0))  # a day old: removed even though its host is unknown
    assert store.sweep() == 1 and not foreign.exists()


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60) | st.from_regex(r"[a./\\%:~ ]{0,12}", fullmatch=True))
def test_path_helper_stays_under_root_or_raises(raw: str) -> None:
    """Property: for any string, the resolved path is under the root, or the helper raises."""
    root = Path("/srv/mltrail-root-that-need-not-exist")
    try:
        resolved = resolve_under(root, raw)
    except UnsafePathError:
        return
    assert os.path.commonpath([str(root), str(resolved)]) == str(root)
    assert resolved != root
    name = logical_path(raw)
    assert ".." not in name.split("/") and not name.startswith("/") and "\\" not in name


def test_resolve_under_refuses_a_symlink_out(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to("/etc")
    with pytest.raises(UnsafePathError, match="outside"):
        resolve_under(root, "link/passwd")
    assert resolve_under(root, "a/b.txt") == (root / "a" / "b.txt").resolve()
