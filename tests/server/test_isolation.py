"""Cross-project isolation: nothing of project B reaches a token scoped to project A.

Two projects, each seeded with real data: runs with params, tags and metrics, captured state
with a git diff blob holding a secret, console lines, run files, artifacts (objects, a tree,
aliases) and lineage that crosses between the projects. Every route of the app's route table
(the REST API of ``/openapi.json``, the UI's JSON reads and pages, static files) is called
with every method by A's read, write and admin tokens, its parameters filled with B's
identifiers, and:

- no marker of B (ids, names, values, keys, secrets, digests) is in a response, body or
  headers, unless the request itself carried it;
- B's resource answers exactly like one that does not exist (a "ghost" of the same shape):
  status and body are the same, so nothing tells A that B's resource exists;
- the database and the artifacts root are unchanged afterwards (no side effect).

A's own reads are swept too (lineage, inputs, consumers, versions and run pages whose graph
would cross into B). Requests are generated from the route table: a route whose parameters
have no filler here fails the test with the name of the filler to add; nothing is skipped.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import sqlalchemy as sa
from fastapi import params as fparams
from fastapi.dependencies.utils import get_flat_params
from fastapi.routing import APIRoute
from srvhelp import Client, Server, make_server
from starlette.routing import Mount, Route

from mltrail.capture.base import blob_digest
from mltrail.objects.digest import hash_bytes
from mltrail.objects.tree import Tree, TreeEntry
from mltrail.server.compat.mlflow.shape import MLFLOW_PREFIXES
from mltrail.store.sql.schema import metadata
from mltrail.store.wire import encode_batch
from mltrail.testing.contract import make_batch

BATCH = {"Content-Type": "application/x-mltrail-batch"}
WRITES = frozenset({"POST", "PUT", "PATCH"})
READS = frozenset({"GET", "HEAD"})
#: runs never read as crashed during a test (a status flip would differ between twins)
HEARTBEAT_S = 3600.0


# -- the two projects (and a ghost of B: the same shapes, stored nowhere) ------------------


@dataclass(frozen=True)
class Ids:
    """One project's identifiers and contents, as the fillers put them into requests.

    ``tag`` is five characters for every instance, so a ghost's values have the lengths of
    B's (their responses can be compared byte for byte after swapping the values).
    """

    tag: str
    project: str
    run: str
    run2: str

    @property
    def prefix(self) -> str:
        return self.run[:8]

    @property
    def run_name(self) -> str:
        return f"{self.tag}-run-name"

    @property
    def param_key(self) -> str:
        return f"{self.tag}_param"

    @property
    def param_value(self) -> str:
        return f"{self.tag}-pval-771"

    @property
    def tag_key(self) -> str:
        return f"{self.tag}_tag"

    @property
    def tag_value(self) -> str:
        return f"{self.tag}-tval-882"

    @property
    def metric(self) -> str:
        return f"{self.tag}_loss"

    @property
    def art(self) -> str:
        return f"{self.tag}-art"

    @property
    def alias(self) -> str:
        return f"{self.tag}-gold"

    @property
    def model(self) -> str:
        return f"{self.tag}-mdl"

    @property
    def sweep(self) -> str:
        return "sw-" + self.tag.encode().hex()

    @property
    def file_path(self) -> str:
        return f"{self.tag}/notes.txt"

    @property
    def diff(self) -> bytes:
        return f"diff --git a/k b/k\n+password = '{self.tag.upper()}-SECRET-DIFF'\n".encode()

    @property
    def console(self) -> str:
        return f"token={self.tag.upper()}-SECRET-CONSOLE"

    @property
    def file_bytes(self) -> bytes:
        return f"{self.tag.upper()}-SECRET-FILE".encode()

    @property
    def obj_bytes(self) -> bytes:
        return f"{self.tag.upper()}-SECRET-OBJECT".encode()

    @property
    def blob(self) -> str:
        return blob_digest(self.diff)

    @property
    def file_digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.file_bytes).hexdigest()

    @property
    def obj(self) -> str:
        return hash_bytes(self.obj_bytes)

    @property
    def tree(self) -> Tree:
        return Tree([TreeEntry(f"{self.tag}.txt", self.obj, len(self.obj_bytes))])

    @property
    def tree_digest(self) -> str:
        return self.tree.digest

    def values(self) -> dict[str, str]:
        """Every string that names or holds something of this project (for markers/swaps)."""
        out = {
            "project": self.project,
            "run": self.run,
            "run2": self.run2,
            "prefix": self.prefix,
            "run_name": self.run_name,
            "param_key": self.param_key,
            "param_value": self.param_value,
            "tag_key": self.tag_key,
            "tag_value": self.tag_value,
            "metric": self.metric,
            "art": self.art,
            "alias": self.alias,
            "model": self.model,
            "sweep": self.sweep,
            "file_path": self.file_path,
            "diff": self.diff.decode(),
            "console": self.console,
            "file_bytes": self.file_bytes.decode(),
            "obj_bytes": self.obj_bytes.decode(),
        }
        for name in ("blob", "file_digest", "obj", "tree_digest"):
            digest: str = getattr(self, name)
            out[name] = digest
            out[name + "_hex"] = digest.split(":", 1)[1].removesuffix(".tree")
            out[name + "_short"] = out[name + "_hex"][:12]
        return out


A = Ids("alpha", "alpha-project", "cafe01alpha0", "alpha2alpha2")
B = Ids("bzqxy", "bzqxy-project", "cafe01bzqxy0", "bzqxy2bzqxy2")
GHOST = Ids("ghost", "ghost-project", "cafe01ghost0", "ghost2ghost2")
#: an A version produced by B's run (an unscoped token recorded it): its run id is B's
A_V2_BYTES = b"alpha v2, made by a run of the other project"


def _markers(ids: Ids) -> set[str]:
    return {v for v in ids.values().values() if len(v) >= 8}


B_MARKERS = _markers(B)


# -- fillers: how each parameter of a route is filled --------------------------------------

#: path parameter name -> values (``(ids, route path) -> [str]``)
PATH_FILLERS: dict[str, Callable[[Ids, str], list[str]]] = {
    "run_id": lambda i, p: [i.run, i.run2],
    "prefix": lambda i, p: [i.prefix, i.run],
    "digest": lambda i, p: [i.blob] if p.startswith("/api/v1/blobs/") else [i.obj, i.tree_digest],
    "project": lambda i, p: [i.project],
    "version": lambda i, p: ["1"] if p.startswith("/api/v1/models/") else [_plotly_version()],
    "name": lambda i, p: [i.model],
    "alias": lambda i, p: [i.alias],
    "sweep_id": lambda i, p: [i.sweep],
    "static_path": lambda i, p: ["ui.js", "ui.css"],
}

#: query parameter name -> value (a list for a repeated parameter)
QUERY_FILLERS: dict[str, Callable[[Ids], Any]] = {
    "project": lambda i: i.project,
    "name": lambda i: i.art,
    "version": lambda i: 1,
    "run_id": lambda i: i.run,
    "key": lambda i: i.metric,
    "path": lambda i: i.file_path,
    "source": lambda i: f"{i.run}.spool",
    "ref": lambda i: f"{i.project}/{i.art}:v1",
    "alias": lambda i: i.alias,
    "filter": lambda i: f"params.{i.param_key} = '{i.param_value}'",
    "runs": lambda i: [i.run, i.run2],
    "a": lambda i: i.run,
    "b": lambda i: i.run2,
    "q": lambda i: "SECRET",
    "direction": lambda i: "both",
    "tail": lambda i: 50,
}

#: header parameter name (lowercase) -> value
HEADER_FILLERS: dict[str, Callable[[Ids], str]] = {
    "x-content-digest": lambda i: "sha256:" + hashlib.sha256(b"tampered").hexdigest(),
}


def _file_put(i: Ids) -> list[dict[str, Any]]:
    return [{"content": b"tampered"}]


def _ingest_bodies(i: Ids) -> list[dict[str, Any]]:
    """Batches aimed at the project's runs: more data, a continued spool, a re-creation."""
    more = make_batch(i.run, project=None, tags={"x": "y"}, metrics={"m": [(9, 1.0)]})
    spool = make_batch(
        i.run, project=None, source=f"{i.run}.spool", start=100, end=200, tags={"x": "y"}
    )
    recreate = make_batch(i.run2, project=i.project, source=f"{i.run2}.evil", start=0, end=5)
    fresh = make_batch("zzfresh0run1", project=i.project, source="zzfresh0run1.s", end=5)
    return [{"content": encode_batch(b), "headers": BATCH} for b in (more, spool, recreate, fresh)]


def _version_bodies(i: Ids) -> list[dict[str, Any]]:
    new = {
        "type": "dataset",
        "kind": "file",
        "size": 3,
        "file_count": 1,
    }
    return [
        {"json": {**new, "project": i.project, "name": i.art, "digest": i.obj}},
        {"json": {**new, "project": i.project, "name": "new-art", "digest": hash_bytes(b"n")}},
        {  # A's project, B's run as the producer
            "json": {
                **new,
                "project": A.project,
                "name": "new-art",
                "digest": hash_bytes(b"n"),
                "run_id": i.run,
            }
        },
    ]


#: (method, route path) -> request bodies; every POST/PUT/PATCH route needs an entry
BODIES: dict[tuple[str, str], Callable[[Ids], list[dict[str, Any]]]] = {
    ("POST", "/api/v1/runs"): lambda i: [
        {"json": {"project": i.project, "name": i.run_name, "params": {i.param_key: 1}}}
    ],
    ("PATCH", "/api/v1/runs/{run_id}"): lambda i: [{"json": {"status": "killed"}}],
    ("POST", "/api/v1/runs/{run_id}/log"): lambda i: [
        {
            "json": {
                "metrics": [{"key": i.metric, "value": 1, "step": 5}],
                "params": {i.param_key: "other"},
                "tags": {i.tag_key: "changed"},
            }
        }
    ],
    ("POST", "/api/v1/ingest"): _ingest_bodies,
    ("PUT", "/api/v1/runs/{run_id}/files"): _file_put,
    ("PUT", "/api/v1/objects/{digest}"): lambda i: [{"content": b"not the object's bytes"}],
    ("POST", "/api/v1/objects/missing"): lambda i: [{"json": {"digests": [i.obj, i.tree_digest]}}],
    ("POST", "/api/v1/artifacts/versions"): _version_bodies,
    ("PUT", "/api/v1/artifacts/aliases"): lambda i: [
        {"json": {"project": i.project, "name": i.art, "alias": "moved", "version": 1}}
    ],
    ("POST", "/api/v1/runs/{run_id}/inputs"): lambda i: [
        {"json": {"project": i.project, "name": i.art, "version": 1}},
        {"json": {"project": A.project, "name": A.art, "version": 1}},
    ],
    ("POST", "/login"): lambda i: [
        {"data": {"token": "mlt_not_a_token", "next": f"/runs/{i.run}"}}
    ],
    ("POST", "/logout"): lambda i: [{}],
    ("PUT", "/api/v1/ui/projects/{project}/views/{name}"): lambda i: [
        {"json": {"spec": {"panels": [{"metric": i.metric}], "hidden": [i.run]}}}
    ],
    ("POST", "/api/v1/models"): lambda i: [{"json": {"project": i.project, "name": "new-mdl"}}],
    ("PATCH", "/api/v1/models/{name}"): lambda i: [
        {"json": {"project": i.project, "description": "changed"}}
    ],
    ("PUT", "/api/v1/models/{name}/archived"): lambda i: [
        {"json": {"project": i.project, "archived": False}}
    ],
    ("POST", "/api/v1/models/{name}/versions"): lambda i: [
        {"json": {"project": i.project, "artifact_name": i.art, "artifact_version": 1}}
    ],
    ("PUT", "/api/v1/models/{name}/versions/{version}/archived"): lambda i: [
        {"json": {"project": i.project, "archived": False}}
    ],
    ("PUT", "/api/v1/models/{name}/versions/{version}/card"): lambda i: [
        {"json": {"project": i.project, "card": {"intended_use": "changed"}}}
    ],
    ("PUT", "/api/v1/models/{name}/aliases/{alias}"): lambda i: [
        {"json": {"project": i.project, "version": 1}}
    ],
}

#: (method, route path) -> more query variants than "required only" and "all fillable"
EXTRA_QUERIES: dict[tuple[str, str], Callable[[Ids], list[dict[str, Any]]]] = {
    ("GET", "/api/v1/lineage"): lambda i: [
        *({"run_id": r, "direction": d} for r in (i.run, i.run2) for d in _DIRECTIONS),
        *(
            {"project": i.project, "name": i.art, "version": n, "direction": d}
            for n in (1, 2)
            for d in _DIRECTIONS
        ),
    ],
    ("GET", "/api/v1/artifacts/resolve"): lambda i: [
        {"ref": i.art},
        {"ref": i.art, "project": i.project},
        {"ref": f"{i.art}:{i.alias}", "project": i.project},
        {"ref": f"{i.project}/{i.art}:v2"},
        {"ref": i.tree_digest},
        {"ref": i.tree_digest, "project": i.project},
    ],
    ("GET", "/api/v1/artifacts/consumers"): lambda i: [
        {"project": i.project, "name": i.art, "version": 2}
    ],
    ("GET", "/api/v1/artifacts"): lambda i: [{}],
    ("GET", "/api/v1/model-refs/resolve"): lambda i: [
        {"ref": f"models:/{i.project}/{i.model}@{i.alias}"},
        {"ref": f"models:/{i.model}/1", "project": i.project},
        {"ref": f"models:/{i.model}"},
    ],
    ("GET", "/api/v1/models"): lambda i: [{}],
    ("GET", "/model"): lambda i: [
        {"project": i.project, "name": i.model},
        {"project": i.project, "name": i.model, "version": 1},
    ],
    ("GET", "/api/v1/runs"): lambda i: [
        {},
        {"filter": f"tags.{i.tag_key} = '{i.tag_value}'"},
        {"filter": f"metrics.{i.metric} >= 0"},
        {"filter": "tags.`reproduction-of` != ''"},
    ],
    ("GET", "/api/v1/runs/{run_id}/series"): lambda i: [{"key": i.metric, "raw": "true"}],
    ("GET", "/compare"): lambda i: [{"runs": i.run}, {"runs": f"{i.prefix},{i.run2}"}],
    ("GET", "/diff"): lambda i: [{"runs": [i.run, i.run2]}, {"a": i.prefix, "b": A.run}],
    ("GET", "/p/{project:path}"): lambda i: [{"filter": f"metrics.{i.metric} >= 0"}],
}
_DIRECTIONS = ("upstream", "downstream", "both")


def _plotly_version() -> str:
    from mltrail.server.ui import _plotly

    return _plotly.version()


# -- the route table ---------------------------------------------------------------------


@dataclass(frozen=True)
class Op:
    """One method of one route."""

    method: str
    path: str
    route: Any = field(compare=False)


def operations(app: Any) -> list[Op]:
    """Every (method, route) of the app, included routers walked, mounts included."""
    ops: list[Op] = []

    def add(route: Any, path: str) -> None:
        if path.startswith(MLFLOW_PREFIXES):
            return  # MLflow's API: walked with its own fillers (tests/mlflow_compat)
        if isinstance(route, Mount):
            ops.append(Op("GET", path + "/{static_path}", route))
        elif isinstance(route, Route):
            for method in sorted(route.methods or {"GET"}):
                ops.append(Op(method, path, route))
        else:
            pytest.fail(f"route of an unknown type {type(route).__name__} at {path}: teach")

    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is None:
            add(route, route.path)
            continue
        for ctx in contexts():
            add(ctx.original_route, ctx.path)
    return ops


_PATH_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")


@dataclass
class Req:
    """One request to make."""

    method: str
    url: str
    params: dict[str, Any] = field(default_factory=dict)
    kwargs: dict[str, Any] = field(default_factory=dict)

    def send(self, client: Client) -> httpx.Response:
        return client.request(self.method, self.url, params=self.params, **self.kwargs)

    def text(self) -> str:
        """Everything the request carries, as text (what an echo may repeat)."""
        parts = [self.url, urlencode(self.params, doseq=True), json.dumps(self.params)]
        for key in ("json", "data", "headers"):
            if key in self.kwargs:
                parts.append(json.dumps(self.kwargs[key]))
        content = self.kwargs.get("content")
        if isinstance(content, bytes):
            parts.append(content.decode("latin-1"))
        return "\n".join(parts)


def _fields(op: Op) -> tuple[list[tuple[str, bool]], list[tuple[str, bool]]]:
    """(query params, header params) of the route as (name, required)."""
    if not isinstance(op.route, APIRoute):
        return [], []
    query, headers = [], []
    for f in get_flat_params(op.route.dependant):
        info = f.field_info
        required = bool(info.is_required())
        if isinstance(info, fparams.Query):
            query.append((f.alias, required))
        elif isinstance(info, fparams.Header):
            headers.append((f.alias.lower().replace("_", "-"), required))
        elif not isinstance(info, fparams.Path | fparams.Cookie):
            pytest.fail(f"{op.method} {op.path}: parameter {f.alias} of an unknown kind")
    return query, headers


def requests_for(op: Op, ids: Ids) -> list[Req]:
    """Every request for ``op`` with its parameters filled from ``ids`` (fail if unfillable)."""
    where = f"{op.method} {op.path}"
    names = _PATH_PARAM.findall(op.path)
    for name in names:
        if name not in PATH_FILLERS:
            pytest.fail(
                f"{where}: no filler for path parameter {name!r}; add one to PATH_FILLERS in "
                "tests/server/test_isolation.py"
            )
    urls = []
    for combo in itertools.product(*(PATH_FILLERS[n](ids, op.path) for n in names)):
        values = dict(zip(names, combo, strict=True))
        urls.append(_PATH_PARAM.sub(lambda m, v=values: v[m.group(1)], op.path))
    query, header_fields = _fields(op)
    for name, required in query:
        if required and name not in QUERY_FILLERS:
            pytest.fail(
                f"{where}: no filler for required query parameter {name!r}; add one to "
                "QUERY_FILLERS in tests/server/test_isolation.py"
            )
    headers: dict[str, str] = {}
    for name, required in header_fields:
        if name in HEADER_FILLERS:
            headers[name] = HEADER_FILLERS[name](ids)
        elif required:
            pytest.fail(
                f"{where}: no filler for required header {name!r}; add one to HEADER_FILLERS "
                "in tests/server/test_isolation.py"
            )
    required_only = {n: QUERY_FILLERS[n](ids) for n, req in query if req}
    fillable = {n: QUERY_FILLERS[n](ids) for n, _ in query if n in QUERY_FILLERS}
    extra = EXTRA_QUERIES.get((op.method, op.path), lambda i: [])(ids)
    queries: list[dict[str, Any]] = []
    for q in (required_only, fillable, *({**required_only, **e} for e in extra)):
        if q not in queries:
            queries.append(q)
    if op.method in WRITES:
        key = (op.method, op.path)
        if key not in BODIES:
            pytest.fail(
                f"{where}: no request body filler; add an entry to BODIES in "
                "tests/server/test_isolation.py (an empty list of kwargs is not allowed)"
            )
        bodies = BODIES[key](ids)
        assert bodies, f"{where}: BODIES gives no body"
    else:
        bodies = [{}]
    out = []
    for url, q, body in itertools.product(urls, queries, bodies):
        kwargs = dict(body)
        merged = {**headers, **kwargs.pop("headers", {})}
        if merged:
            kwargs["headers"] = merged
        out.append(Req(op.method, url, dict(q), kwargs))
    return out


# -- seeding -----------------------------------------------------------------------------


def _ok(r: httpx.Response, *codes: int) -> httpx.Response:
    assert r.status_code in (codes or (200, 201)), (r.request.url, r.status_code, r.text)
    return r


def _ingest(client: Client, batch: Any) -> None:
    _ok(client.post("/api/v1/ingest", content=encode_batch(batch), headers=BATCH))


def _seed(admin: Client, i: Ids, reproduces: str | None = None) -> None:
    """One project's runs, state, blobs, console, files, objects, artifact and alias; its
    second run says it reproduces ``reproduces`` (a run of the other project)."""
    state = {
        "code": {
            "versioned": True,
            "repos": [
                {
                    "root": f"/{i.tag}/repo",
                    "sha": "1" * 40,
                    "branch": "main",
                    "dirty": True,
                    "diff": i.blob,
                }
            ],
        }
    }
    first = make_batch(
        i.run,
        project=i.project,
        source=f"{i.run}.spool",
        end=100,
        heartbeat_s=HEARTBEAT_S,
        metrics={i.metric: [(0, 1.0), (1, 0.5)]},
        params={i.param_key: i.param_value},
        tags={i.tag_key: i.tag_value},
        state=state,
        blobs={i.blob: i.diff},
        console=[(1_700_000_000_000, "stdout", i.console)],
    )
    assert first.create is not None
    first.create = replace(first.create, name=i.run_name)
    _ingest(admin, first)
    tags = {"reproduction-of": reproduces} if reproduces else {}
    second = make_batch(i.run2, project=i.project, tags=tags, heartbeat_s=HEARTBEAT_S)
    assert second.create is not None
    second.create = replace(second.create, name=i.run_name + "2")
    _ingest(admin, second)
    _ok(
        admin.put(
            f"/api/v1/runs/{i.run}/files",
            params={"path": i.file_path},
            content=i.file_bytes,
            headers={"X-Content-Digest": i.file_digest},
        )
    )
    for digest, data in ((i.obj, i.obj_bytes), (i.tree_digest, i.tree.to_bytes())):
        _ok(admin.put(f"/api/v1/objects/{digest}", content=data))
    _ok(
        admin.post(
            "/api/v1/artifacts/versions",
            json={
                "project": i.project,
                "name": i.art,
                "type": "dataset",
                "digest": i.tree_digest,
                "kind": "tree",
                "size": len(i.obj_bytes),
                "file_count": 1,
                "run_id": i.run,
                "aliases": [i.alias],
            },
        )
    )
    model = {"project": i.project, "artifact_name": i.art, "artifact_version": 1, "run_id": i.run}
    _ok(admin.post(f"/api/v1/models/{i.model}/versions", json=model))
    _ok(
        admin.put(
            f"/api/v1/models/{i.model}/aliases/{i.alias}", json={"project": i.project, "version": 1}
        )
    )
    card = {"project": i.project, "card": {"limitations": i.param_value}}
    _ok(admin.put(f"/api/v1/models/{i.model}/versions/1/card", json=card))
    view = {"spec": {"panels": [{"t": "line", "m": i.metric}], "hidden": [i.run]}}
    _ok(admin.put(f"/api/v1/ui/projects/{i.project}/views/{i.model}", json=view))


def _seed_crossings(admin: Client) -> None:
    """Lineage across the projects, recorded by an unscoped token (only it can link them)."""
    for run, ids in ((B.run2, A), (A.run, B)):
        body = {"project": ids.project, "name": ids.art, "version": 1}
        _ok(admin.post(f"/api/v1/runs/{run}/inputs", json=body))
    _ok(admin.put(f"/api/v1/objects/{hash_bytes(A_V2_BYTES)}", content=A_V2_BYTES))
    _ok(
        admin.post(
            "/api/v1/artifacts/versions",
            json={
                "project": A.project,
                "name": A.art,
                "type": "dataset",
                "digest": hash_bytes(A_V2_BYTES),
                "kind": "file",
                "size": len(A_V2_BYTES),
                "file_count": 1,
                "run_id": B.run,
            },
        )
    )


def _seed_sweeps(store_uri: str) -> None:
    """A sweep in each project (sweeps are created beside the store, not over REST)."""
    from mltrail.sweeps.spec import parse_spec
    from mltrail.sweeps.storage import create_sweep

    for ids in (A, B):
        spec = {
            "command": ["train"],
            "method": "random",
            "metric": ids.metric,
            "parameters": {ids.param_key: {"values": [1, 2]}},
            "project": ids.project,
        }
        create_sweep(parse_spec(spec), store=store_uri, sweep_id=ids.sweep)


@dataclass
class World:
    """The seeded server, A's tokens and an unscoped reader."""

    srv: Server
    a_clients: dict[str, Client]
    root_reader: Client


@pytest.fixture
def world(store_uri: str, tmp_path: Path) -> Iterator[World]:
    """Projects A and B seeded through the API, with A's read, write and admin tokens."""
    srv = make_server(store_uri, tmp_path / "artifacts")
    admin = srv.client(srv.admin_token)
    _seed(admin, A)
    _seed(admin, B, reproduces=A.run)
    _seed_crossings(admin)
    _seed_sweeps(store_uri)
    a_clients = {s: srv.client(srv.token(s, project=A.project)) for s in ("read", "write", "admin")}
    yield World(srv, a_clients, srv.client(srv.read_token))
    for c in srv._clients:
        c.close()
    srv.store.close()


# -- checks ------------------------------------------------------------------------------


def _response_text(r: httpx.Response) -> str:
    head = "\n".join(f"{k}: {v}" for k, v in r.headers.items())
    return head + "\n" + r.content.decode("latin-1")


def leaks(req: Req, r: httpx.Response, markers: set[str] = B_MARKERS) -> list[str]:
    """Markers of B in the response that the request did not carry itself."""
    sent = req.text()
    got = _response_text(r)
    return sorted(m for m in markers if m in got and m not in sent)


def _swap(text: bytes, pairs: list[tuple[str, str]]) -> bytes:
    for old, new in pairs:
        text = text.replace(old.encode(), new.encode())
    return text


_GHOST_TO_B = sorted(
    ((GHOST.values()[k], B.values()[k]) for k in B.values()), key=lambda p: -len(p[0])
)
assert all(len(g) == len(b) for g, b in _GHOST_TO_B), "a ghost value differs in length from B's"


def snapshot(srv: Server) -> dict[str, Any]:
    """Every row of every table and every file under the artifacts root."""
    out: dict[str, Any] = {}
    with srv.store._engine.connect() as conn:
        for table in metadata.sorted_tables:
            out[table.name] = sorted(repr(tuple(row)) for row in conn.execute(sa.select(table)))
    out["files"] = sorted(
        (str(p.relative_to(srv.artifacts)), hashlib.sha256(p.read_bytes()).hexdigest())
        for p in srv.artifacts.rglob("*")
        if p.is_file()
    )
    return out


# -- the tests ---------------------------------------------------------------------------


def test_every_route_is_enumerated(world: World) -> None:
    """The route walk covers every path of /openapi.json, the UI pages and static files."""
    ops = operations(world.srv.app)
    walked = {(o.method, o.path) for o in ops}
    spec = _ok(world.root_reader.get("/openapi.json")).json()
    for path, methods in spec["paths"].items():
        for method in methods:
            assert (method.upper(), path) in walked, (method, path)
    for page in ("/", "/p/{project:path}", "/runs/{run_id}", "/compare", "/diff", "/login"):
        assert ("GET", page) in walked, page
    assert ("GET", "/ui/static/{static_path}") in walked


def test_no_byte_of_project_b_reaches_project_a_tokens(world: World) -> None:
    """Every route x method x A token on B's ids: no B marker, a ghost's answer, no effect."""
    ops = operations(world.srv.app)
    before = snapshot(world.srv)
    problems: list[str] = []
    reached_b: set[tuple[str, str]] = set()
    calls = 0
    for op in ops:
        reqs, ghosts = requests_for(op, B), requests_for(op, GHOST)
        assert len(reqs) == len(ghosts), op
        for req, ghost in zip(reqs, ghosts, strict=True):
            if (
                op.method in READS
                and world.root_reader.request(
                    req.method, req.url, params=req.params, **req.kwargs
                ).is_success
            ):
                reached_b.add((op.method, op.path))
            for scope, client in world.a_clients.items():
                r = req.send(client)
                g = ghost.send(client)
                calls += 1
                where = f"[{scope}] {req.method} {req.url} {req.params} -> {r.status_code}"
                found = leaks(req, r)
                if found:
                    problems.append(f"{where}: leaks {found}: {r.text[:300]!r}")
                if r.status_code >= 500:
                    problems.append(f"{where}: server error {r.text[:200]!r}")
                if r.status_code != g.status_code or r.content != _swap(g.content, _GHOST_TO_B):
                    problems.append(
                        f"{where}: answers otherwise than for a ghost ({g.status_code}): "
                        f"{r.text[:200]!r} vs {g.text[:200]!r}"
                    )
    after = snapshot(world.srv)
    changed = [t for t in before if before[t] != after[t]]
    assert not changed, f"A's requests changed {changed}"
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:40])
    # the fillers reach B's data: an unscoped reader gets an answer on every read route
    reads = {(o.method, o.path) for o in ops if o.method in READS}
    assert reads - reached_b == set(), "fillers that miss B's data"
    assert calls >= 3 * len(ops), (calls, len(ops))


#: write fillers that are refused even for an unscoped token, on purpose
REFUSED_ON_PURPOSE = {
    ("PUT", "/api/v1/objects/{digest}"): "bytes that do not match: A uploading B's real bytes "
    "would be a legitimate upload (it proves A has them)",
}


def test_write_fillers_reach_project_b(world: World) -> None:
    """An unscoped writer's same requests succeed: the fillers name B's real resources."""
    writer = world.srv.client(world.srv.write_token)
    missed = []
    for op in reversed(operations(world.srv.app)):  # ending runs (PATCH) comes last
        if op.method in READS or (op.method, op.path) in REFUSED_ON_PURPOSE:
            continue
        answers = [req.send(writer) for req in requests_for(op, B)]
        if not any(r.is_success or r.is_redirect for r in answers):
            missed.append((op.method, op.path, [(r.status_code, r.text[:100]) for r in answers]))
    assert not missed, missed


def test_project_a_reads_never_cross_into_project_b(world: World) -> None:
    """A's own runs, artifacts, lineage and pages, where they link to B, show nothing of B."""
    problems: list[str] = []
    ok = 0
    for op in operations(world.srv.app):
        if op.method not in READS:
            continue
        for req in requests_for(op, A):
            for scope, client in world.a_clients.items():
                r = req.send(client)
                ok += r.is_success
                found = leaks(req, r)
                if found or r.status_code >= 500:
                    problems.append(
                        f"[{scope}] {req.method} {req.url} {req.params} -> {r.status_code}: "
                        f"leaks {found}: {r.text[:300]!r}"
                    )
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:40])
    assert ok > 100, ok


# -- targeted regressions ----------------------------------------------------------------


def test_blob_is_served_only_when_a_readable_run_references_it(world: World) -> None:
    """Item 6: B's diff blob is 404 for every A token (as a missing blob); A's own is 200."""
    ghost = "sha256:" + "0" * 64
    for client in world.a_clients.values():
        r = client.get(f"/api/v1/blobs/{B.blob}")
        missing = client.get(f"/api/v1/blobs/{ghost}")
        assert r.status_code == 404, r.text
        assert B.diff not in r.content and r.text == missing.text.replace(ghost, B.blob)
        assert client.get(f"/api/v1/blobs/{A.blob}").content == A.diff
    assert world.root_reader.get(f"/api/v1/blobs/{B.blob}").content == B.diff


def test_a_state_naming_a_foreign_digest_does_not_open_the_blob(world: World) -> None:
    """State naming B's blob digest, or forged bytes under it, does not open it to A."""
    writer = world.a_clients["write"]
    doc = {"code": {"repos": [{"diff": B.blob}]}}
    _ingest(writer, make_batch("alphastate01", project=A.project, state=doc))
    assert writer.get(f"/api/v1/blobs/{B.blob}").status_code == 404
    forged = make_batch("alphastate02", project=A.project, blobs={B.blob: b"guess"})
    r = writer.post("/api/v1/ingest", content=encode_batch(forged), headers=BATCH)
    assert r.status_code in (400, 422), r.text
    assert writer.get(f"/api/v1/blobs/{B.blob}").status_code == 404
    page = writer.get("/runs/alphastate01")
    assert page.status_code == 200 and "SECRET-DIFF" not in page.text


def test_scoped_checks_are_index_lookups(world: World) -> None:
    """Each scoped check is one query that SQLite answers from indexes, never a table scan."""
    store = world.srv.store
    if store.dialect != "sqlite":
        pytest.skip("the plan is checked on SQLite")
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *rest: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    reads = store.scoped_reads()
    sa.event.listen(store._engine, "before_cursor_execute", record)
    try:
        assert reads.blob_readable(B.blob, B.project)
        assert not reads.blob_readable(B.blob, A.project)
        assert reads.resolve_run_id("cafe01", A.project) == A.run
        assert reads.readable_objects([A.obj, B.obj], A.project) == {A.obj}
        assert reads.run_projects([A.run, B.run]) == {A.run: A.project, B.run: B.project}
        assert reads.is_version_digest(A.tree_digest, A.project)
    finally:
        sa.event.remove(store._engine, "before_cursor_execute", record)
    assert len(seen) == 6, seen
    with store._engine.connect() as conn:
        for statement, parameters in seen:
            plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
            details = " | ".join(str(row[-1]) for row in plan)
            assert "SCAN" not in details and "USING" in details, (statement, details)


def test_upgraded_store_links_existing_blobs_and_objects(tmp_path: Path) -> None:
    """A 0004 store gets its blob and object links on upgrade (a tree's files on first read)."""
    from alembic import command
    from alembic.config import Config

    from mltrail.artifacts.records import NewVersion
    from mltrail.store.registry import open_store
    from mltrail.store.sql import schema
    from mltrail.store.sql.engine import create_engine

    old = open_store(str(tmp_path / "store"), shared=False)
    doc = {"code": {"repos": [{"diff": B.blob}]}}
    old.apply_batch(make_batch(B.run, project=B.project, state=doc, blobs={B.blob: B.diff}))
    tree = NewVersion(B.project, B.art, "dataset", B.tree_digest, "tree", 19, 1, run_id=B.run)
    old.artifacts().log_version(tree)
    old.close()
    engine = create_engine(f"sqlite:///{tmp_path}/store/mltrail.db")
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(schema.__file__).parent / "migrations"))
    cfg.attributes["engine"] = engine
    command.downgrade(cfg, "0004")
    assert not sa.inspect(engine).has_table("run_blobs")
    engine.dispose()
    from mltrail.store.sql.maintenance import upgrade_database

    upgrade_database(f"sqlite:///{tmp_path}/store/mltrail.db")  # a server never migrates
    srv = make_server(str(tmp_path / "store"), tmp_path / "artifacts")
    try:
        admin = srv.client(srv.admin_token)
        for digest, data in ((B.obj, B.obj_bytes), (B.tree_digest, B.tree.to_bytes())):
            _ok(admin.put(f"/api/v1/objects/{digest}", content=data))
        b_only = srv.client(srv.token("read", project=B.project))
        a_only = srv.client(srv.token("read", project=A.project))
        assert b_only.get(f"/api/v1/blobs/{B.blob}").content == B.diff
        assert a_only.get(f"/api/v1/blobs/{B.blob}").status_code == 404
        assert b_only.get(f"/api/v1/objects/{B.obj}").status_code == 404  # not yet linked
        assert b_only.get(f"/api/v1/objects/{B.tree_digest}").content == B.tree.to_bytes()
        assert b_only.get(f"/api/v1/objects/{B.obj}").content == B.obj_bytes
        assert a_only.get(f"/api/v1/objects/{B.tree_digest}").status_code == 404
        assert a_only.get(f"/api/v1/objects/{B.obj}").status_code == 404
    finally:
        for c in srv._clients:
            c.close()
        srv.store.close()


def test_run_id_prefix_resolves_within_the_token_project(world: World) -> None:
    """Item 7: a prefix shared with B resolves to A's run; B's prefix is 404 like a ghost's."""
    shared = "cafe01"
    for client in world.a_clients.values():
        assert _ok(client.get(f"/api/v1/run-ids/{shared}")).json() == {"run_id": A.run}
        for mine, ghost in ((B.prefix, GHOST.prefix), (B.run, GHOST.run)):
            r = client.get(f"/api/v1/run-ids/{mine}")
            g = client.get(f"/api/v1/run-ids/{ghost}")
            assert r.status_code == g.status_code == 404
            assert B.run not in r.text or mine == B.run
            assert r.text == g.text.replace(ghost, mine)
        page = client.get(f"/runs/{shared}")
        assert page.status_code == 307 and page.headers["location"] == f"/runs/{A.run}"
    ambiguous = world.root_reader.get(f"/api/v1/run-ids/{shared}")
    assert ambiguous.status_code == 409
    assert A.run not in ambiguous.text and B.run not in ambiguous.text


def test_ingest_position_of_a_foreign_spool_is_like_an_unknown_one(world: World) -> None:
    """The position of B's spool answers as an unknown source does (0), not 404."""
    for client in world.a_clients.values():
        mine = client.get("/api/v1/ingest/position", params={"source": f"{B.run}.spool"})
        ghost = client.get("/api/v1/ingest/position", params={"source": f"{GHOST.run}.spool"})
        assert mine.status_code == ghost.status_code == 200
        assert mine.json() == ghost.json() == {"position": 0}
    reader = world.a_clients["read"]
    own = reader.get("/api/v1/ingest/position", params={"source": f"{A.run}.spool"})
    assert own.json() == {"position": 100}


def test_objects_are_readable_where_the_project_references_them(world: World) -> None:
    """B's objects are 404 for A until A uploads the same bytes (proof it has them)."""
    reader, writer = world.a_clients["read"], world.a_clients["write"]
    for digest in (B.obj, B.tree_digest):
        assert reader.get(f"/api/v1/objects/{digest}").status_code == 404
        assert reader.head(f"/api/v1/objects/{digest}").status_code == 404
    missing = writer.post("/api/v1/objects/missing", json={"digests": [B.obj, A.obj]}).json()
    assert missing == {"missing": [B.obj]}
    assert reader.get(f"/api/v1/objects/{A.tree_digest}").content == A.tree.to_bytes()
    assert reader.get(f"/api/v1/objects/{A.obj}").content == A.obj_bytes
    put = writer.put(f"/api/v1/objects/{B.obj}", content=b"a guess")
    assert put.status_code == 400
    assert reader.get(f"/api/v1/objects/{B.obj}").status_code == 404
    put = writer.put(f"/api/v1/objects/{B.obj}", content=B.obj_bytes)
    assert put.status_code == 201 and put.json()["stored"] is True
    assert reader.get(f"/api/v1/objects/{B.obj}").content == B.obj_bytes
    assert reader.get(f"/api/v1/objects/{B.tree_digest}").status_code == 404


def test_versions_and_lineage_hide_the_runs_of_another_project(world: World) -> None:
    """A's version made by B's run shows no run id; lineage stops at B's nodes."""
    reader = world.a_clients["read"]
    versions = reader.get(
        "/api/v1/artifacts/versions", params={"project": A.project, "name": A.art}
    ).json()["versions"]
    assert [v["run_id"] for v in versions] == [A.run, None]
    graph = reader.get("/api/v1/lineage", params={"run_id": A.run}).json()
    ids = {n["id"] for n in graph["nodes"]}
    assert all(B.project not in json.dumps(n) for n in graph["nodes"]), graph
    assert f"run:{A.run}" in ids or any(A.run in i for i in ids)
    full = world.root_reader.get("/api/v1/lineage", params={"run_id": A.run}).json()
    assert len(full["nodes"]) > len(graph["nodes"])
