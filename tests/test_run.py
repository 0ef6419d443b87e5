"""The SDK surface: init, the active run, store selection, resume, ids, lifecycle."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import mltrail
from mltrail.errors import InvalidArgumentError, MltrailError
from mltrail.store.registry import resolve_location
from mltrail.testing import user_tags


def test_quickstart_shape(tmp_path, monkeypatch):
    """The README example works: with-block, fluent log, params, tags, finished status."""
    monkeypatch.chdir(tmp_path)
    with mltrail.init(
        project="mnist", config={"lr": 0.01, "model": {"depth": 4}}, tags={"goal": "improve-recall"}
    ) as run:
        for step in range(100):
            mltrail.log({"loss": 0.5, "acc": 0.9}, step=step)
        run.log_params({"optimizer": "adam"})
        run.set_tags({"data": "v3.2"})
    rec = mltrail.Api().run(run.run_id)  # reads after the run's drain (finish returned before)
    assert (tmp_path / ".mltrail" / "mltrail.db").exists()
    assert rec.status is mltrail.RunStatus.FINISHED
    assert rec.params == {"lr": 0.01, "model.depth": 4, "optimizer": "adam"}
    assert user_tags(rec.tags) == {"goal": "improve-recall", "data": "v3.2"}
    assert rec.metrics["loss"].count == 100 and rec.metrics["acc"].last_step == 99
    assert rec.end_ms is not None and rec.end_ms >= rec.created_ms
    assert not list((tmp_path / ".mltrail" / "spool").glob("*.spool"))


def test_exception_marks_failed_and_propagates(tmp_path):
    """An exception inside the block marks the run failed and is re-raised."""
    with pytest.raises(ZeroDivisionError), mltrail.init(project="p", store=str(tmp_path)) as run:
        1 / 0  # noqa: B018
    assert mltrail.Api(str(tmp_path)).run(run.run_id).status is mltrail.RunStatus.FAILED


def test_keyboard_interrupt_marks_killed(tmp_path):
    """Ctrl-C inside the block marks the run killed."""
    with pytest.raises(KeyboardInterrupt), mltrail.init(project="p", store=str(tmp_path)) as run:
        raise KeyboardInterrupt
    assert mltrail.Api(str(tmp_path)).run(run.run_id).status is mltrail.RunStatus.KILLED


def test_fluent_functions_need_an_active_run():
    """mltrail.log without init raises a clear error; finish is a no-op."""
    assert mltrail.active_run() is None
    with pytest.raises(MltrailError, match="init"):
        mltrail.log({"a": 1.0})
    mltrail.finish()


def test_fluent_acts_on_active_run(tmp_path):
    """Module-level functions act on the latest unfinished run."""
    run = mltrail.init(project="p", store=str(tmp_path))
    assert mltrail.active_run() is run
    mltrail.log({"m": 1.0})
    mltrail.log_params({"a": 1})
    mltrail.set_tags({"t": "x"})
    mltrail.finish()
    assert mltrail.active_run() is None
    rec = mltrail.Api(str(tmp_path)).run(run.run_id)
    assert rec.params == {"a": 1} and user_tags(rec.tags) == {"t": "x"} and "m" in rec.metrics


def test_run_ids_short_unique_url_safe(tmp_path):
    """Run ids are 12 URL-safe characters and do not repeat."""
    from mltrail.ids import new_run_id

    ids = {new_run_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    assert all(re.fullmatch(r"[0-9a-z]{12}", i) for i in ids)


def test_store_resolution_order(tmp_path, monkeypatch):
    """store= beats MLTRAIL_STORE beats the git-root default."""
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "sub").mkdir()
    monkeypatch.chdir(repo / "sub")
    assert resolve_location().display == str(repo / ".mltrail")
    monkeypatch.setenv("MLTRAIL_STORE", str(tmp_path / "env"))
    assert resolve_location().display == str(tmp_path / "env")
    assert resolve_location(tmp_path / "arg").display == str(tmp_path / "arg")
    loc = resolve_location(f"sqlite:///{tmp_path}/x.db")
    assert loc.uri == f"sqlite:///{tmp_path}/x.db" and loc.spool_dir == tmp_path / "x.spool"
    pg = resolve_location("postgresql://u:secret@127.0.0.1:1/db")
    assert "secret" not in pg.display and "secret" not in str(pg.spool_dir)


@pytest.mark.parametrize(
    "bad", ["ftp://x", "sqlite://", "sqlite:///:memory:", "https://", "http:///x"]
)
def test_bad_store_uris(bad):
    """Unknown schemes and unsupported URIs are clear errors."""
    with pytest.raises(InvalidArgumentError, match="store"):
        resolve_location(bad)


def test_resume_continues_run(tmp_path):
    """resume= continues a run: steps go on, params stay immutable, status running again."""
    with mltrail.init(project="p", store=str(tmp_path), config={"lr": 0.1}) as first:
        for s in range(5):
            first.log({"m": float(s)})
    with mltrail.init(store=str(tmp_path), resume=first.run_id[:6]) as again:
        assert again.run_id == first.run_id and again.project == "p"
        again.log({"m": 5.0})
        with pytest.raises(mltrail.ParamConflictError):
            again.log_params({"lr": 0.2})
        again.flush()
        assert mltrail.Api(str(tmp_path)).run(first.run_id).status is mltrail.RunStatus.RUNNING
    h = mltrail.Api(str(tmp_path)).history(first.run_id, "m")
    assert list(h.steps) == [0, 1, 2, 3, 4, 5]
    assert mltrail.Api(str(tmp_path)).run(first.run_id).status is mltrail.RunStatus.FINISHED


def test_resume_unknown_run(tmp_path):
    """Resuming a run that does not exist raises NotFoundError."""
    with pytest.raises(mltrail.NotFoundError):
        mltrail.init(store=str(tmp_path), resume="zzzz")


def test_bad_config_type(tmp_path):
    """A config that is not a mapping/dataclass/namespace is rejected."""
    with pytest.raises(InvalidArgumentError, match="config"):
        mltrail.init(project="p", store=str(tmp_path), config=[1, 2])


def test_dataclass_and_namespace_config(tmp_path):
    """Dataclasses and argparse namespaces are accepted as config."""
    import argparse
    import dataclasses

    @dataclasses.dataclass
    class Cfg:
        lr: float = 0.1
        depth: int = 2

    with mltrail.init(project="p", store=str(tmp_path), config=Cfg()) as a:
        pass
    with mltrail.init(project="p", store=str(tmp_path), config=argparse.Namespace(bs=32)) as b:
        pass
    api = mltrail.Api(str(tmp_path))
    assert api.run(a.run_id).params == {"lr": 0.1, "depth": 2}
    assert api.run(b.run_id).params == {"bs": 32}


def test_import_is_light():
    """import mltrail pulls in no SQLAlchemy, NumPy, FastAPI, Optuna, torch or pyarrow."""
    code = (
        "import sys, mltrail; print(' '.join(m for m in ('sqlalchemy', 'numpy', 'fastapi', "
        "'optuna', 'torch', 'pyarrow', 'alembic', 's3fs') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_all_is_sorted_and_complete():
    """mltrail.__all__ is sorted and every name resolves."""
    assert mltrail.__all__ == sorted(mltrail.__all__)
    for name in mltrail.__all__:
        assert getattr(mltrail, name) is not None


def test_schema_revision_matches_migrations():
    """The schema revision the code expects is the Alembic head."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from mltrail.store.sql import schema

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(schema.__file__).parent / "migrations"))
    assert ScriptDirectory.from_config(cfg).get_current_head() == schema.SCHEMA_REVISION


def test_migrations_match_schema(tmp_path):
    """A new store (created directly) and a database built by replaying every migration have
    the same tables, columns and indexes, and the same recorded revision."""
    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext

    from mltrail.store.registry import open_store
    from mltrail.store.sql import schema
    from mltrail.store.sql.engine import create_engine

    open_store(str(tmp_path / "fresh"), shared=False).close()
    fresh = sa.create_engine(f"sqlite:///{tmp_path}/fresh/mltrail.db")
    replayed = create_engine(f"sqlite:///{tmp_path}/replayed.db")
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(schema.__file__).parent / "migrations"))
    cfg.attributes["engine"] = replayed
    command.upgrade(cfg, "head")

    def shape(engine):
        insp = sa.inspect(engine)
        return {
            t: (
                sorted((c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(t)),
                sorted((i["name"], tuple(i["column_names"])) for i in insp.get_indexes(t)),
                insp.get_pk_constraint(t)["constrained_columns"],
            )
            for t in insp.get_table_names()
        }

    assert shape(fresh) == shape(replayed)
    assert set(shape(fresh)) >= {t.name for t in schema.metadata.sorted_tables}
    for engine in (fresh, replayed):
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"version_table": schema.VERSION_TABLE})
            assert ctx.get_current_revision() == schema.SCHEMA_REVISION
        engine.dispose()


def test_network_filesystem_warns(monkeypatch, tmp_path):
    """An SQLite store on nfs/cifs/fuse warns that WAL needs one host."""
    from mltrail.store.sql import engine as eng

    monkeypatch.setattr(eng, "_filesystem_type", lambda p: "nfs4")
    with pytest.warns(RuntimeWarning, match="nfs4"):
        eng.warn_if_network_fs(tmp_path / "x.db")


def test_attached_process_death_does_not_crash_the_run(tmp_path):
    """A process logging into another's run (MLTRAIL_RUN_ID) dies: its data is recovered and
    the run stays with its owner, who still decides the final status."""
    import os
    import signal

    store = str(tmp_path / "s")
    run = mltrail.init(project="p", store=store, system_metrics_s=0, console=False)
    run.flush()
    child = (
        "import os, signal, mltrail\n"
        "r = mltrail.init(config={'worker': 1})\n"
        "mltrail.log({'child_loss': 0.5}, step=0)\n"
        "r.flush()\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    env = {**os.environ, "MLTRAIL_RUN_ID": run.run_id, "MLTRAIL_STORE": store}
    done = subprocess.run([sys.executable, "-c", child], env=env, capture_output=True, timeout=60)
    assert done.returncode == -signal.SIGKILL, done.stderr
    api = mltrail.Api(store)  # recovers the child's spool
    record = api.run(run.run_id)
    assert record.status is mltrail.RunStatus.RUNNING
    assert record.params["worker"] == 1 and record.metrics["child_loss"].count == 1
    run.finish()
    assert mltrail.Api(store).run(run.run_id).status is mltrail.RunStatus.FINISHED
