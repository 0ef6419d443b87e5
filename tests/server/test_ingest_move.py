"""A batch that moves a run (``Batch.project``) is scoped like any write: a project-scoped
token moves runs only within its own project."""

from __future__ import annotations

from srvhelp import Server

from mltrail.store.batch import Batch, RunCreate
from mltrail.store.wire import encode_batch

HEADERS = {"Content-Type": "application/x-mltrail-batch"}


def test_a_scoped_token_moves_runs_only_within_its_project(srv: Server) -> None:
    server = srv
    scoped = server.client(server.token("write", project="vision"))
    create = Batch("mv3", create=RunCreate("vision", "n", 1, 5.0, "", "", ""))
    assert scoped.post("/api/v1/ingest", content=encode_batch(create), headers=HEADERS).is_success
    away = Batch("mv3", project="other")
    refused = scoped.post("/api/v1/ingest", content=encode_batch(away), headers=HEADERS)
    assert refused.status_code == 404 and "moves runs only within its own project" in refused.text
    assert server.store.get_run("mv3").project == "vision"
    writer = server.client(server.write_token)
    assert writer.post("/api/v1/ingest", content=encode_batch(away), headers=HEADERS).is_success
    assert server.store.get_run("mv3").project == "other"
