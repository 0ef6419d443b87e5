"""``/api/v1/objects``: content-addressed objects, verified on upload, nothing half-stored."""

from __future__ import annotations

import os

from srvhelp import Client, Server

from mltrail.objects.digest import hash_bytes


def _stored_files(srv: Server) -> list[str]:
    root = srv.artifacts / "objects"
    return sorted(
        os.path.relpath(os.path.join(d, f), root)
        for d, _, files in os.walk(root)
        for f in files
        if not f.startswith(".")
    )


def test_put_head_get_round_trip(srv: Server, api: Client) -> None:
    data = os.urandom(300_000)
    digest = hash_bytes(data)
    assert api.head(f"/api/v1/objects/{digest}").status_code == 404
    r = api.put(
        f"/api/v1/objects/{digest}",
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 201, r.text
    assert r.json() == {"digest": digest, "size": len(data), "stored": True}
    head = api.head(f"/api/v1/objects/{digest}")
    assert head.status_code == 200 and head.headers["content-length"] == str(len(data))
    got = api.get(f"/api/v1/objects/{digest}")
    assert got.status_code == 200 and got.content == data
    assert got.headers["x-content-digest"] == digest
    again = api.put(f"/api/v1/objects/{digest}", content=data)
    assert again.status_code == 200 and again.json()["stored"] is False
    assert len(_stored_files(srv)) == 1


def test_sha256_md5_and_tree_digests(api: Client) -> None:
    for algo in ("sha256", "md5"):
        data = f"{algo} bytes".encode()
        digest = hash_bytes(data, algo)
        assert api.put(f"/api/v1/objects/{digest}", content=data).status_code == 201
        assert api.get(f"/api/v1/objects/{digest}").content == data
    manifest = b'{"entries":[]}'
    tree = hash_bytes(manifest, tree=True)
    assert tree.endswith(".tree")
    assert api.put(f"/api/v1/objects/{tree}", content=manifest).status_code == 201


def test_mismatched_bytes_are_refused_and_nothing_is_stored(srv: Server, api: Client) -> None:
    digest = hash_bytes(b"the declared content")
    r = api.put(f"/api/v1/objects/{digest}", content=b"other content")
    assert r.status_code == 400 and r.json()["error"]["code"] == "digest_mismatch"
    assert api.head(f"/api/v1/objects/{digest}").status_code == 404
    assert _stored_files(srv) == []
    assert not list((srv.artifacts / "files" / "tmp").iterdir())  # no temp file left


def test_bad_digests_are_422_or_404(api: Client) -> None:
    for bad in ("sha1:abcd", "blake3:XYZ", "blake3:" + "a" * 10, "..%2F..%2Fetc%2Fpasswd"):
        r = api.put(f"/api/v1/objects/{bad}", content=b"x")
        assert r.status_code in (404, 422), (bad, r.status_code)
    assert api.get("/api/v1/objects/blake3:" + "0" * 64).status_code == 404


def test_missing_lists_what_the_server_lacks(api: Client) -> None:
    have = hash_bytes(b"have")
    api.put(f"/api/v1/objects/{have}", content=b"have")
    lack = hash_bytes(b"lack")
    r = api.post("/api/v1/objects/missing", json={"digests": [have, lack]})
    assert r.status_code == 200 and r.json() == {"missing": [lack]}
    assert api.post("/api/v1/objects/missing", json={"digests": ["nope"]}).status_code == 422


def test_read_token_cannot_upload_and_anonymous_gets_401(srv: Server) -> None:
    digest = hash_bytes(b"x")
    reader = srv.client(srv.read_token)
    assert reader.put(f"/api/v1/objects/{digest}", content=b"x").status_code == 403
    assert srv.client().get(f"/api/v1/objects/{digest}").status_code == 401


def test_object_size_limit_is_413(store_uri: str, tmp_path) -> None:
    from dataclasses import replace

    from srvhelp import Client as C

    from mltrail.server.app import ServerConfig, create_app
    from mltrail.server.limits import Limits

    config = ServerConfig(store=store_uri, artifacts=str(tmp_path / "a"), auth=False)
    app = create_app(replace(config, limits=Limits(max_object_bytes=1000)))
    client = C(app)
    try:
        data = os.urandom(5000)
        r = client.put(f"/api/v1/objects/{hash_bytes(data)}", content=data)
        assert r.status_code == 413
    finally:
        client.close()
        app.state.store.close()
