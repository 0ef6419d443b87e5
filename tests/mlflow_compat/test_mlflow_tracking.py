"""The real ``mlflow`` client against a real ``mltrail server``: experiments, runs, logging,
search, metric history, artifacts, on SQLite and PostgreSQL (one server per module and
backend)."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlfhelp import Mlf, point_mlflow, start

mlflow = pytest.importorskip("mlflow")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def mlf(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mlf]:
    yield from start(request.param, tmp_path_factory.mktemp("mlflow"))


@pytest.fixture
def client(mlf: Mlf, monkeypatch: pytest.MonkeyPatch) -> Any:
    point_mlflow(monkeypatch, mlf)
    return mlf.client()


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _code(exc: BaseException) -> str:
    return str(getattr(exc, "error_code", ""))


def test_experiments_create_get_by_name_and_search(mlf: Mlf, client: Any) -> None:
    from mlflow.exceptions import MlflowException

    names = [_name("exp") for _ in range(3)]
    ids = [client.create_experiment(n) for n in names]
    assert len(set(ids)) == 3
    got = client.get_experiment(ids[0])
    assert (got.name, got.experiment_id, got.lifecycle_stage) == (names[0], ids[0], "active")
    assert client.get_experiment_by_name(names[1]).experiment_id == ids[1]
    assert client.get_experiment_by_name("Default").experiment_id == "0"
    assert client.get_experiment("0").name == "Default"
    # the experiment is a project of the store, its id the project's
    projects = {p.name: p.project_id for p in mlf.store.list_projects()}
    assert projects[names[0]] == ids[0]

    with pytest.raises(MlflowException) as err:
        client.create_experiment(names[0])
    assert _code(err.value) == "RESOURCE_ALREADY_EXISTS"
    with pytest.raises(MlflowException) as err:
        client.get_experiment("ffffffffffffffff")
    assert _code(err.value) == "RESOURCE_DOES_NOT_EXIST"
    assert client.get_experiment_by_name(_name("missing")) is None

    prefix = names[0].split("-")[0]
    found = client.search_experiments(filter_string=f"name LIKE '{prefix}-%'", order_by=["name"])
    assert [e.name for e in found] == sorted(names)
    page1 = client.search_experiments(
        filter_string=f"name LIKE '{prefix}-%'", order_by=["name DESC"], max_results=2
    )
    assert [e.name for e in page1] == sorted(names, reverse=True)[:2] and page1.token
    page2 = client.search_experiments(
        filter_string=f"name LIKE '{prefix}-%'",
        order_by=["name DESC"],
        max_results=2,
        page_token=page1.token,
    )
    assert [e.name for e in page2] == sorted(names)[:1] and not page2.token


def test_fluent_run_lands_as_an_ordinary_run(mlf: Mlf, client: Any) -> None:
    exp = _name("fluent")
    mlflow.set_experiment(exp)
    with mlflow.start_run(run_name="first") as run:
        mlflow.log_param("lr", 0.01)
        mlflow.log_params({"depth": 3, "opt": "adam"})
        for step in range(5):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metrics({"acc": 0.75, "nan_metric": float("nan")}, step=4)
        mlflow.set_tag("stage", "dev")
        mlflow.set_tags({"team": "vision"})
        with mlflow.start_run(run_name="child", nested=True) as child:
            mlflow.log_metric("inner", 2.0)
    run_id = run.info.run_id
    got = client.get_run(run_id)
    assert got.info.status == "FINISHED" and got.info.end_time >= got.info.start_time
    assert got.info.run_name == "first"
    assert got.info.experiment_id == mlflow.get_experiment_by_name(exp).experiment_id
    assert got.data.params == {"lr": "0.01", "depth": "3", "opt": "adam"}
    assert got.data.metrics["loss"] == 0.2 and math.isnan(got.data.metrics["nan_metric"])
    assert got.data.tags["stage"] == "dev" and got.data.tags["team"] == "vision"
    assert client.get_run(child.info.run_id).data.tags["mlflow.parentRunId"] == run_id

    record = mlf.store.get_run(run_id)  # the same run, read the native way
    assert record.project == exp and record.name == "first"
    assert str(record.status) == "finished"
    assert record.params["lr"] == "0.01" and record.tags["team"] == "vision"
    series = mlf.store.metric_history(run_id, "loss")
    assert series.steps.tolist() == [0, 1, 2, 3, 4]
    assert series.values.tolist() == [1.0, 0.5, 1 / 3, 0.25, 0.2]

    client.set_terminated(child.info.run_id, status="FAILED")
    assert client.get_run(child.info.run_id).info.status == "FAILED"
    client.update_run(run_id, name="renamed")
    assert client.get_run(run_id).info.run_name == "renamed"


def test_params_are_immutable_and_names_follow_mlflow_rules(client: Any) -> None:
    from mlflow.exceptions import MlflowException

    run = client.create_run("0")
    rid = run.info.run_id
    client.log_param(rid, "lr", "0.1")
    client.log_param(rid, "lr", "0.1")  # the same value again is fine
    with pytest.raises(MlflowException) as err:
        client.log_param(rid, "lr", "0.2")
    assert _code(err.value) == "INVALID_PARAMETER_VALUE" and "lr" in str(err.value)
    for bad in ("a\nb", "../up", "x" * 251):
        with pytest.raises(MlflowException) as err:
            client.log_metric(rid, bad, 1.0)
        assert _code(err.value) == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as err:
        client.set_tag(rid, "k", "v" * 8001, synchronous=True)
    assert _code(err.value) == "INVALID_PARAMETER_VALUE" and "8000" in str(err.value)
    assert client.get_run(rid).data.params == {"lr": "0.1"}


def test_log_batch_limits_and_atomicity(mlf: Mlf, client: Any) -> None:
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.exceptions import MlflowException

    rid = client.create_run("0").info.run_id
    metrics = [Metric(f"m{i % 10}", float(i), 1_700_000_000_000 + i, i // 10) for i in range(1000)]
    client.log_batch(rid, metrics=metrics, params=[Param("p", "1")], tags=[RunTag("t", "x")])
    assert len(mlf.store.metric_history(rid, "m3")) == 100

    store = client._tracking_client.store  # the RestStore: no client-side splitting
    too_many = [Metric("x", 1.0, 0, i) for i in range(1001)]
    for kwargs, what in (
        ({"metrics": too_many, "params": [], "tags": []}, "1000 metrics"),
        ({"metrics": [], "params": [Param(f"p{i}", "1") for i in range(101)], "tags": []}, "100"),
        ({"metrics": [], "params": [], "tags": [RunTag(f"t{i}", "1") for i in range(101)]}, "100"),
        ({"metrics": [], "params": [Param("a", "1"), Param("a", "2")], "tags": []}, "Duplicate"),
    ):
        with pytest.raises(MlflowException) as err:
            store.log_batch(rid, **kwargs)
        assert _code(err.value) == "INVALID_PARAMETER_VALUE" and what in str(err.value)
    # a param clash refuses the whole call: the metric and tag in it are not written
    with pytest.raises(MlflowException) as err:
        store.log_batch(rid, [Metric("late", 1.0, 0, 0)], [Param("p", "2")], [RunTag("u", "1")])
    assert _code(err.value) == "INVALID_PARAMETER_VALUE"
    data = client.get_run(rid).data
    assert "late" not in data.metrics and "u" not in data.tags and data.params == {"p": "1"}


def test_metric_history_is_paged(client: Any) -> None:
    from mlflow.entities import Metric

    rid = client.create_run("0").info.run_id
    for first in range(0, 2500, 1000):
        batch = [
            Metric("h", float(i), 1_700_000_000_000 + i, i)
            for i in range(first, min(first + 1000, 2500))
        ]
        client.log_batch(rid, metrics=batch, synchronous=True)
    full = client.get_metric_history(rid, "h")
    assert [m.step for m in full] == list(range(2500))
    store = client._tracking_client.store
    seen: list[int] = []
    token = None
    pages = 0
    while True:
        page = store.get_metric_history(rid, "h", max_results=1000, page_token=token)
        seen.extend(m.step for m in page)
        pages += 1
        token = page.token
        if not token:
            break
    assert seen == list(range(2500)) and pages == 3
    assert client.get_metric_history(rid, "never-logged") == []


def test_search_runs_filter_order_and_pages(client: Any) -> None:
    exp_id = client.create_experiment(_name("search"))
    ids = []
    for i in range(7):
        run = client.create_run(exp_id, run_name=f"r{i}", tags={"parity": str(i % 2)})
        client.log_metric(run.info.run_id, "acc", i / 10)
        client.log_param(run.info.run_id, "i", str(i))
        if i < 6:
            client.set_terminated(run.info.run_id)
        ids.append(run.info.run_id)
    found = client.search_runs(
        [exp_id], "metrics.acc > 0.25 and tags.parity = '1'", order_by=["metrics.acc DESC"]
    )
    assert [r.info.run_id for r in found] == [ids[5], ids[3]]
    assert [
        r.info.run_name for r in client.search_runs([exp_id], "attributes.run_name = 'r2'")
    ] == ["r2"]
    assert [
        r.info.run_id for r in client.search_runs([exp_id], "attributes.status = 'RUNNING'")
    ] == [ids[6]]
    assert len(client.search_runs([exp_id], "params.i IN ('1', '2')")) == 2
    seen = []
    token = None
    while True:
        page = client.search_runs(
            [exp_id], order_by=["metrics.acc ASC"], max_results=3, page_token=token
        )
        seen.extend(r.info.run_id for r in page)
        token = page.token
        if not token:
            break
    assert seen == ids
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException) as err:
        client.search_runs([exp_id], "metrics.acc >")
    assert _code(err.value) == "INVALID_PARAMETER_VALUE"


def test_delete_restore_runs_and_tags(client: Any) -> None:
    from mlflow.entities import ViewType
    from mlflow.exceptions import MlflowException

    exp_id = client.create_experiment(_name("lifecycle"))
    keep, gone = (client.create_run(exp_id).info.run_id for _ in range(2))
    client.set_tag(keep, "temp", "1")
    client.delete_tag(keep, "temp")
    assert "temp" not in client.get_run(keep).data.tags
    with pytest.raises(MlflowException) as err:
        client.delete_tag(keep, "temp")
    assert _code(err.value) == "RESOURCE_DOES_NOT_EXIST"
    client.delete_run(gone)
    assert client.get_run(gone).info.lifecycle_stage == "deleted"
    assert "mltrail.deleted" not in client.get_run(gone).data.tags
    assert [r.info.run_id for r in client.search_runs([exp_id])] == [keep]
    assert [
        r.info.run_id for r in client.search_runs([exp_id], run_view_type=ViewType.DELETED_ONLY)
    ] == [gone]
    assert len(client.search_runs([exp_id], run_view_type=ViewType.ALL)) == 2
    with pytest.raises(MlflowException) as err:
        client.log_metric(gone, "x", 1.0)
    assert _code(err.value) == "INVALID_PARAMETER_VALUE"
    client.restore_run(gone)
    assert client.get_run(gone).info.lifecycle_stage == "active"
    assert len(client.search_runs([exp_id])) == 2


def test_artifacts_round_trip_as_run_files(mlf: Mlf, client: Any, tmp_path: Path) -> None:
    import plotly.graph_objects as go

    mlflow.set_experiment(_name("art"))
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("alpha")
    (src / "sub" / "b.bin").write_bytes(bytes(range(256)))
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(src / "a.txt"))
        mlflow.log_artifacts(str(src), artifact_path="tree")
        mlflow.log_dict({"k": [1, 2]}, "cfg/config.json")
        mlflow.log_text("hello", "notes.txt")
        mlflow.log_figure(go.Figure(data=[go.Scatter(y=[1, 3, 2])]), "plots/fig.html")
    rid = run.info.run_id
    top = {(f.path, f.is_dir) for f in client.list_artifacts(rid)}
    assert top == {
        ("a.txt", False),
        ("tree", True),
        ("cfg", True),
        ("notes.txt", False),
        ("plots", True),
    }
    assert {f.path for f in client.list_artifacts(rid, "tree/sub")} == {"tree/sub/b.bin"}
    out = Path(client.download_artifacts(rid, "tree", str(tmp_path / "dl")))
    assert (out / "sub" / "b.bin").read_bytes() == bytes(range(256))
    assert json.loads(mlflow.artifacts.load_text(f"runs:/{rid}/cfg/config.json")) == {"k": [1, 2]}
    assert mlflow.artifacts.load_text(f"runs:/{rid}/notes.txt") == "hello"
    files = {f.path: f.size for f in mlf.store.run_files().list(rid)}
    assert files["a.txt"] == 5 and files["tree/sub/b.bin"] == 256 and "plots/fig.html" in files


def test_errors_in_mlflow_shape(mlf: Mlf) -> None:
    import httpx

    auth = {"Authorization": f"Bearer {mlf.token}"}
    with httpx.Client(base_url=mlf.url, headers=auth) as http:
        r = http.get("/api/2.0/mlflow/runs/get", params={"run_id": "nosuchrun"})
        assert r.status_code == 404
        assert (
            r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
            and "nosuchrun" in r.json()["message"]
        )
        rid = http.post("/api/2.0/mlflow/runs/create", json={}).json()["run"]["info"]["run_id"]
        r = http.post("/api/2.0/mlflow/runs/log-metric", json={"run_id": rid, "key": "k"})
        assert r.status_code == 400 and r.json() == {
            "error_code": "INVALID_PARAMETER_VALUE",
            "message": "Missing value for required parameter 'value'.",
        }
        r = http.post("/api/2.0/mlflow/traces/search", json={})
        assert r.status_code == 404 and r.json()["error_code"] == "ENDPOINT_NOT_FOUND"
        r = http.get("/ajax-api/2.0/mlflow/experiments/get", params={"experiment_id": "0"})
        assert r.status_code == 200 and r.json()["experiment"]["name"] == "Default"
        info = http.get("/api/3.0/mlflow/server-info").json()
        assert info["store_type"] and info["multipart_uploads_enabled"] is False
    r = httpx.get(mlf.url + "/api/2.0/mlflow/experiments/get", params={"experiment_id": "0"})
    assert r.status_code == 401  # the server's auth guards MLflow's API too, in MLflow's shape
    assert r.json()["error_code"] == "UNAUTHENTICATED"


def test_tokens_keep_their_scope(mlf: Mlf, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.exceptions import MlflowException

    admin = mlf.client()
    point_mlflow(monkeypatch, mlf)
    mine, theirs = _name("mine"), _name("theirs")
    mine_id, theirs_id = admin.create_experiment(mine), admin.create_experiment(theirs)
    foreign = admin.create_run(theirs_id).info.run_id
    admin.log_metric(foreign, "secret", 1.0)

    point_mlflow(monkeypatch, mlf, mlf.srv.token("write", project=mine))
    scoped = mlf.client()
    own = scoped.create_run(mine_id).info.run_id
    scoped.log_metric(own, "ok", 1.0)
    assert [e.name for e in scoped.search_experiments()] == [mine]
    for call in (
        lambda: scoped.get_experiment(theirs_id),
        lambda: scoped.get_run(foreign),
        lambda: scoped.log_metric(foreign, "evil", 1.0),
        lambda: scoped.set_tag(foreign, "evil", "1"),
        lambda: scoped.create_run(theirs_id),
        lambda: scoped.delete_run(foreign),
    ):
        with pytest.raises(MlflowException) as err:
            call()
        assert _code(err.value) == "RESOURCE_DOES_NOT_EXIST"
    assert scoped.get_experiment_by_name(theirs) is None
    assert scoped.search_runs([theirs_id]) == []
    data = mlf.store.get_run(foreign)
    assert set(data.metrics) == {"secret"} and "evil" not in data.tags

    point_mlflow(monkeypatch, mlf, mlf.srv.token("read"))
    with pytest.raises(MlflowException) as err:
        mlf.client().log_metric(own, "ro", 1.0)
    assert _code(err.value) == "PERMISSION_DENIED"
