"""Project-scoped tokens on MLflow's API: every MLflow route, with project B's ids and with a
ghost's (ids that exist nowhere, of the same lengths), under project A's write token (a read
token is refused every write by the auth middleware before any route runs). The answers
must be identical (after swapping the ghost's values for B's), carry no byte of B's data,
and leave B's runs, files and models as they were.

The generic walk of tests/server/test_isolation.py fills routes from their declared
parameters; MLflow's routes take their fields from a JSON body or the query string, so they
are walked here with MLflow-shaped fillers. A route without a filler fails the test.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from mlfhelp import Mlf, start

pytest.importorskip("mlflow")

from mltrail.server.compat.mlflow.shape import MLFLOW_PREFIXES  # noqa: E402


@dataclass(frozen=True)
class Ids:
    """What a request names: B's real resources, or a ghost's (same lengths, absent)."""

    project: str
    exp: str
    run: str
    model: str
    alias: str
    metric: str
    param: str
    tag: str

    def values(self) -> list[str]:
        return [self.project, self.exp, self.run, self.model, self.alias, self.metric,
                self.param, self.tag]  # fmt: skip


Filler = Callable[[Ids], dict[str, Any]]


def _run(i: Ids) -> dict[str, Any]:
    return {"run_id": i.run}


def _model(i: Ids) -> dict[str, Any]:
    return {"name": i.model}


def _version(i: Ids) -> dict[str, Any]:
    return {"name": i.model, "version": "1"}


#: (method, path after the prefix) -> the request's fields (JSON body, or query for GET)
FIELDS: dict[tuple[str, str], Filler] = {
    ("GET", "/server-info"): lambda i: {},
    ("POST", "/experiments/create"): lambda i: {"name": i.project},
    ("GET", "/experiments/get"): lambda i: {"experiment_id": i.exp},
    ("GET", "/experiments/get-by-name"): lambda i: {"experiment_name": i.project},
    ("POST", "/experiments/search"): lambda i: {"filter": f"name = '{i.project}'"},
    ("GET", "/experiments/search"): lambda i: {"filter": f"name = '{i.project}'"},
    ("POST", "/experiments/delete"): lambda i: {"experiment_id": i.exp},
    ("POST", "/experiments/restore"): lambda i: {"experiment_id": i.exp},
    ("POST", "/experiments/update"): lambda i: {"experiment_id": i.exp, "new_name": "x"},
    ("POST", "/experiments/set-experiment-tag"): lambda i: {"experiment_id": i.exp, "key": "k"},
    ("POST", "/experiments/delete-experiment-tag"): lambda i: {"experiment_id": i.exp},
    ("POST", "/logged-models/search"): lambda i: {"experiment_ids": [i.exp]},
    ("POST", "/runs/create"): lambda i: {"experiment_id": i.exp, "run_name": "x"},
    ("GET", "/runs/get"): _run,
    ("POST", "/runs/update"): lambda i: {"run_id": i.run, "status": "KILLED", "run_name": "x"},
    ("POST", "/runs/delete"): _run,
    ("POST", "/runs/restore"): _run,
    ("POST", "/runs/log-metric"): lambda i: {
        "run_id": i.run,
        "key": i.metric,
        "value": 5,
        "timestamp": 1,
        "step": 9,
    },
    ("POST", "/runs/log-parameter"): lambda i: {"run_id": i.run, "key": i.param, "value": "z"},
    ("POST", "/runs/set-tag"): lambda i: {"run_id": i.run, "key": i.tag, "value": "changed"},
    ("POST", "/runs/delete-tag"): lambda i: {"run_id": i.run, "key": i.tag},
    ("POST", "/runs/log-batch"): lambda i: {
        "run_id": i.run,
        "metrics": [{"key": i.metric, "value": 5, "timestamp": 1, "step": 9}],
        "params": [{"key": i.param, "value": "z"}],
        "tags": [{"key": i.tag, "value": "changed"}],
    },
    ("POST", "/runs/search"): lambda i: {"experiment_ids": [i.exp]},
    ("GET", "/metrics/get-history"): lambda i: {"run_id": i.run, "metric_key": i.metric},
    ("POST", "/runs/log-inputs"): _run,
    ("POST", "/runs/outputs"): _run,
    ("POST", "/runs/log-model"): _run,
    ("GET", "/artifacts/list"): _run,
    ("POST", "/registered-models/create"): _model,
    ("GET", "/registered-models/get"): _model,
    ("PATCH", "/registered-models/update"): lambda i: {"name": i.model, "description": "d"},
    ("DELETE", "/registered-models/delete"): _model,
    ("GET", "/registered-models/search"): lambda i: {"filter": f"name = '{i.model}'"},
    ("POST", "/registered-models/get-latest-versions"): _model,
    ("GET", "/registered-models/get-latest-versions"): _model,
    ("POST", "/registered-models/set-tag"): lambda i: {"name": i.model, "key": "k", "value": "v"},
    ("DELETE", "/registered-models/delete-tag"): lambda i: {"name": i.model, "key": "k"},
    ("POST", "/registered-models/alias"): lambda i: {**_version(i), "alias": i.alias},
    ("DELETE", "/registered-models/alias"): lambda i: {"name": i.model, "alias": i.alias},
    ("GET", "/registered-models/alias"): lambda i: {"name": i.model, "alias": i.alias},
    ("POST", "/registered-models/rename"): lambda i: {"name": i.model, "new_name": "x"},
    ("POST", "/model-versions/create"): lambda i: {
        "name": i.model,
        "source": f"runs:/{i.run}/model",
        "run_id": i.run,
    },
    ("GET", "/model-versions/get"): _version,
    ("DELETE", "/model-versions/delete"): _version,
    ("GET", "/model-versions/search"): lambda i: {"filter": f"run_id = '{i.run}'"},
    ("GET", "/model-versions/get-download-uri"): _version,
    ("PATCH", "/model-versions/update"): _version,
    ("POST", "/model-versions/transition-stage"): lambda i: {**_version(i), "stage": "None"},
    ("POST", "/model-versions/set-tag"): lambda i: {**_version(i), "key": "k", "value": "v"},
    ("DELETE", "/model-versions/delete-tag"): lambda i: {**_version(i), "key": "k"},
    # the artifact proxy (path relative to /api/2.0/mlflow-artifacts)
    ("GET", "/artifacts"): lambda i: {"path": f"{i.exp}/{i.run}/artifacts"},
}
#: path parameters of MLflow's routes
PATHS: dict[str, Callable[[Ids], str]] = {
    "artifact_path": lambda i: f"{i.exp}/{i.run}/artifacts/model/MLmodel",
    "mlflow_path": lambda i: f"traces/{i.run}",
}
_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")
#: creates that answer with the time of creation: compared by status and fields, not bytes
_TIMED = {"/registered-models/create"}


def _routes(app: Any, *, ajax: bool = False) -> list[tuple[str, str, str]]:
    """(method, prefix, rest) of every MLflow route of the app (``/ajax-api`` ones when
    ``ajax``: they call the same handlers as their ``/api`` twins)."""
    flat: list[tuple[str, Any]] = []
    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is None:
            flat.append((getattr(route, "path", ""), route))
        else:
            flat.extend((ctx.path, ctx.original_route) for ctx in contexts())
    out = []
    for path, route in flat:
        if not path.startswith(MLFLOW_PREFIXES):
            continue
        if path.startswith("/ajax-api/") and not ajax:  # the /api twins' handlers
            continue
        prefix = next(
            p for p in ("/api/2.0/mlflow-artifacts", *MLFLOW_PREFIXES) if path.startswith(p)
        )
        for method in sorted(route.methods):
            out.append((method, prefix, path[len(prefix) :]))
    return out


def _request(client: httpx.Client, method: str, prefix: str, rest: str, ids: Ids) -> httpx.Response:
    names = _PARAM.findall(rest)
    path = _PARAM.sub(lambda m: PATHS[m.group(1)](ids), rest)
    if names:
        fields: dict[str, Any] = {}
        if method == "PUT":
            return client.put(prefix + path, content=b"not B's model")
    else:
        filler = FIELDS.get((method, rest))
        if filler is None:
            pytest.fail(f"{method} {prefix}{rest}: no filler; add one to FIELDS")
        fields = filler(ids)
    if method == "GET":
        return client.get(prefix + path, params=fields)
    return client.request(method, prefix + path, json=fields)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Mlf, Ids, Ids, str]]:
    from mlflow import MlflowClient

    tmp: Path = tmp_path_factory.mktemp("mlflow-isolation")
    for mlf in start("sqlite", tmp):
        b_token = mlf.srv.token("write", project="bzqxy-project")
        with httpx.Client(base_url=mlf.url, headers={"Authorization": f"Bearer {b_token}"}) as http:
            exp = http.post("/api/2.0/mlflow/experiments/create", json={"name": "bzqxy-project"})
            exp_id = exp.json()["experiment_id"]
        http.close()
        import os

        os.environ["MLFLOW_TRACKING_TOKEN"] = b_token
        try:
            client = MlflowClient(tracking_uri=mlf.url, registry_uri=mlf.url)
            run_id = client.create_run(exp_id, run_name="bzqxy-run").info.run_id
            client.log_metric(run_id, "bzqxy_loss", 0.125)
            client.log_param(run_id, "bzqxy_param", "bzqxy-pval-771")
            client.set_tag(run_id, "bzqxy_tag", "bzqxy-tval-882")
            src = tmp / "model"
            src.mkdir()
            (src / "MLmodel").write_text("BZQXY-SECRET-FILE\n")
            client.log_artifacts(run_id, str(src), "model")
            client.create_registered_model("bzqxy-mdl")
            client.create_model_version("bzqxy-mdl", f"runs:/{run_id}/model", run_id=run_id)
            client.set_registered_model_alias("bzqxy-mdl", "bzqxy-gold", "1")
        finally:
            del os.environ["MLFLOW_TRACKING_TOKEN"]
        b = Ids("bzqxy-project", exp_id, run_id, "bzqxy-mdl", "bzqxy-gold", "bzqxy_loss",
                "bzqxy_param", "bzqxy_tag")  # fmt: skip
        ghost = Ids("ghost-project", "f" * len(exp_id), "g" * len(run_id), "ghost-mdl",
                    "ghost-gold", "ghost_loss", "ghost_param", "ghost_tag")  # fmt: skip
        mlf.store.run_edits().ensure_project("alpha-project")
        yield mlf, b, ghost, "BZQXY-SECRET-FILE"


def _state(mlf: Mlf, b: Ids) -> Any:
    run = mlf.store.get_run(b.run)
    files = mlf.store.run_files().list(b.run)
    reg = mlf.store.model_registry()
    models = [m.to_dict() for m in reg.list_models("bzqxy-project", include_archived=True)]
    versions = [v.to_dict() for v in reg.list_versions("bzqxy-project", b.model)]
    summaries = {k: (s.count, s.last) for k, s in run.metrics.items()}
    return (run.status, run.params, run.tags, summaries, files, models, versions)


_STAMP = re.compile(rb'"(creation_timestamp|last_updated_timestamp)":\d+')


def _unstamped(body: bytes) -> bytes:
    """A body without times of creation (A's own models, made by the walk, differ in them)."""
    return _STAMP.sub(rb'"\1":0', body)


def _swap(text: bytes, b: Ids, ghost: Ids) -> bytes:
    for g, real in sorted(zip(ghost.values(), b.values(), strict=True), key=lambda p: -len(p[0])):
        text = text.replace(g.encode(), real.encode())
    return text


def test_a_tokens_see_b_exactly_as_a_ghost(world: tuple[Mlf, Ids, Ids, str]) -> None:
    mlf, b, ghost, secret = world
    routes = _routes(mlf.srv.app)
    assert len(routes) > 60, routes
    ajax = {
        (m, p.replace("/ajax-api/", "/api/") + r)
        for m, p, r in _routes(mlf.srv.app, ajax=True)
        if p.startswith("/ajax-api/")
    }
    assert ajax <= {(m, p + r) for m, p, r in routes}, "an /ajax-api route with no /api twin"
    before = _state(mlf, b)
    markers = [b.run, b.exp, "bzqxy-pval-771", "bzqxy-tval-882", secret]
    problems: list[str] = []
    for scope in ("write",):  # a read token answers the reads alike and 403 to every write
        token = mlf.srv.token(scope, project="alpha-project")
        with httpx.Client(base_url=mlf.url, headers={"Authorization": f"Bearer {token}"}) as a:
            for method, prefix, rest in routes:
                r = _request(a, method, prefix, rest, b)
                g = _request(a, method, prefix, rest, ghost)
                where = f"[{scope}] {method} {prefix}{rest} -> {r.status_code}"
                if r.status_code >= 500 and r.status_code != 501:
                    problems.append(f"{where}: server error {r.text[:200]}")
                if rest in _TIMED:
                    same = r.status_code == g.status_code
                else:
                    same = r.status_code == g.status_code and _unstamped(r.content) == _unstamped(
                        _swap(g.content, b, ghost)
                    )
                if not same:
                    problems.append(f"{where}: unlike a ghost: {r.text[:160]} vs {g.text[:160]}")
                for marker in markers:
                    if marker in r.text and marker not in _swap(g.content, b, ghost).decode():
                        problems.append(f"{where}: leaks {marker!r}")
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:30])
    assert _state(mlf, b) == before, "A's requests changed B's run, files or models"


def test_the_fillers_reach_b(world: tuple[Mlf, Ids, Ids, str]) -> None:
    """B's own token gets answers with the same fillers (they name B's real resources)."""
    mlf, b, ghost, secret = world
    token = mlf.srv.token("read", project="bzqxy-project")
    with httpx.Client(base_url=mlf.url, headers={"Authorization": f"Bearer {token}"}) as own:
        for rest, check in (
            ("/runs/get", "bzqxy-pval-771"),
            ("/experiments/get", "bzqxy-project"),
            ("/metrics/get-history", "0.125"),
            ("/artifacts/list", "model"),
            ("/registered-models/get", "bzqxy-gold"),
            ("/model-versions/search", b.run),
        ):
            r = _request(own, "GET", "/api/2.0/mlflow", rest, b)
            assert r.status_code == 200 and check in r.text, (rest, r.text[:300])
        r = _request(own, "GET", "/api/2.0/mlflow-artifacts", "/artifacts/{artifact_path}", b)
        assert r.status_code == 200 and r.content == (secret + "\n").encode()
