"""Run search compiled to SQL: operators, NULL semantics, ordering, pagination, hostile input."""

from __future__ import annotations

import base64
import json
import math
import os
import random
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql, sqlite

from mltrail.errors import FilterSyntaxError, InvalidArgumentError
from mltrail.store.search import And, Compare, Ident, In, IsNull, Not, Or, parse_filter
from mltrail.store.sql import search as sql_search
from mltrail.store.sql.schema import metadata, metric_summaries, params, projects, runs, tags
from mltrail.store.sql.search import compile_filter, search_run_ids

NOW = 1_700_000_000_000
NAN = float("nan")
PG_URL = os.environ.get("MLTRAIL_TEST_PG_URL", "")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path) -> Iterator[sa.Engine]:
    """An empty mltrail schema in a SQLite file, or in a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        eng = sa.create_engine(f"sqlite:///{tmp_path / 'search.db'}")
        metadata.create_all(eng)
        yield eng
        eng.dispose()
        return
    if not PG_URL:
        pytest.skip("PostgreSQL not configured: set MLTRAIL_TEST_PG_URL")
    base = sa.create_engine(sa.make_url(PG_URL).set(drivername="postgresql+psycopg"))
    schema = f"search_{uuid.uuid4().hex[:12]}"
    with base.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    eng = base.execution_options(schema_translate_map={None: schema})
    metadata.create_all(eng)
    yield eng
    with base.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    base.dispose()


def _param_row(run_id: str, key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        return {"run_id": run_id, "key": key, "value": value, "vtype": "s", "value_num": None}
    vtype = {bool: "b", int: "i", float: "f", type(None): "n"}[type(value)]
    num = float(value) if vtype in "if" else None
    return {
        "run_id": run_id,
        "key": key,
        "value": json.dumps(value),
        "vtype": vtype,
        "value_num": num,
    }


def pid(name: str) -> str:
    """The project id the tests give project ``name``."""
    return f"p-{name}".ljust(32, "0")


def seed(engine: sa.Engine, specs: list[dict[str, Any]]) -> None:
    """Insert the projects and runs described by ``specs``."""
    pids = {name: pid(name) for name in {spec.get("project", "alpha") for spec in specs}}
    rows: dict[str, list[dict[str, Any]]] = {"runs": [], "params": [], "ms": [], "tags": []}
    for i, spec in enumerate(specs):
        rid, created = spec["id"], spec.get("created", NOW - (1000 - i) * 1000)
        status = spec.get("status", "finished")
        rows["runs"].append({
            "run_id": rid, "project_id": pids[spec.get("project", "alpha")],
            "name": spec.get("name", rid), "status": status, "created_ms": created,
            "end_ms": None if status == "running" else created + 500,
            "heartbeat_ms": spec.get("heartbeat", created + 500), "heartbeat_s": 5.0,
            "user_name": spec.get("user", ""), "host": spec.get("host", ""),
            "command": "", "config": "{}",
        })  # fmt: skip
        rows["params"] += [_param_row(rid, k, v) for k, v in spec.get("params", {}).items()]
        for key, value in spec.get("metrics", {}).items():
            last = None if math.isnan(value) else value
            rows["ms"].append({
                "run_id": rid, "key": key, "last_value": last, "last_step": 1, "last_ms": created,
                "min_value": last, "max_value": last, "count": 1, "open_seq": 0, "open_n": 1,
            })  # fmt: skip
        rows["tags"] += [
            {"run_id": rid, "key": k, "value": v} for k, v in spec.get("tags", {}).items()
        ]
    with engine.begin() as conn:
        conn.execute(
            sa.insert(projects),
            [{"project_id": p, "name": n, "created_ms": 0} for n, p in pids.items()],
        )
        for table, key in (
            (runs, "runs"),
            (params, "params"),
            (metric_summaries, "ms"),
            (tags, "tags"),
        ):
            if rows[key]:
                conn.execute(sa.insert(table), rows[key])


RUNS: list[dict[str, Any]] = [
    {"id": "r01", "name": "baseline", "user": "ana", "host": "h1",
     "params": {"lr": 0.01, "optimizer": "adam", "epochs": 10, "amp": True, "note": "it's",
                "layers": "3", "model.depth": 12},
     "metrics": {"acc": 0.9, "loss": 0.1, "train loss": 1.5},
     "tags": {"stage": "prod", "git": "abc", "pat": "a_c", "lvl": "b"}},
    {"id": "r02", "name": "Sweep-A", "status": "failed", "user": "bo", "host": "h2",
     "params": {"lr": 0.1, "optimizer": "sgd", "epochs": 20, "amp": False, "layers": 3},
     "metrics": {"acc": 0.5, "loss": NAN}, "tags": {"stage": "dev", "pat": "abc", "lvl": "a"}},
    {"id": "r03", "name": "sweep-b", "status": "running", "heartbeat": NOW - 1000, "user": "ana",
     "params": {"lr": 0.001, "optimizer": "Adam", "epochs": 1}, "metrics": {"acc": 0.7},
     "tags": {"stage": "Prod", "pat": "a*c"}},
    {"id": "r04", "name": "crashy", "status": "running", "heartbeat": NOW - 60_000, "user": "cy"},
    {"id": "r05", "project": "beta", "name": "other", "user": "bo",
     "params": {"lr": 0.01, "optimizer": "adam"}, "metrics": {"acc": 0.95, "loss": 0.05},
     "tags": {"team": "x", "n": "1", "lvl": "c"}},
    {"id": "r06", "name": "100% done", "status": "killed", "user": "ana",
     "params": {"lr": "auto", "x": None, "epochs": True}, "metrics": {"acc": 0.7, "loss": 0.3},
     "tags": {"stage": "prod", "pat": "A_C", "path": "c:\\x"}},
]  # fmt: skip
ALL = {"r01", "r02", "r03", "r04", "r05", "r06"}


@pytest.fixture
def db(engine: sa.Engine) -> sa.Engine:
    """The six hand-written runs of RUNS."""
    seed(engine, RUNS)
    return engine


def search(engine: sa.Engine, filter: str | None = None, order_by: str | None = None, **kw: Any):
    """All matching run ids in order (one big page)."""
    kw.setdefault("project_id", None)
    kw.setdefault("limit", 10_000)
    kw.setdefault("page_token", None)
    with engine.connect() as conn:
        ids, token = search_run_ids(conn, filter=filter, order_by=order_by, now_ms=NOW, **kw)
    assert token is None
    return ids


MATCHES = [
    ("params.lr = 0.01", {"r01", "r05"}),
    ("params.lr > 0.005", {"r01", "r02", "r05"}),
    ("params.lr <= 0.01", {"r01", "r03", "r05"}),
    ("params.lr = 'auto'", {"r06"}),
    ("params.lr = '0.01'", {"r01", "r05"}),
    ("params.lr != 0.01", {"r02", "r03", "r06"}),
    ("params.amp = TRUE", {"r01"}),
    ("params.amp = false", {"r02"}),
    ("params.amp != true", {"r02"}),
    ("params.layers = 3", {"r02"}),
    ("params.layers = '3'", {"r01", "r02"}),
    ("params.optimizer like 'a%'", {"r01", "r05"}),
    ("params.optimizer ilike 'A%'", {"r01", "r03", "r05"}),
    ("params.optimizer not like 'a%'", {"r02", "r03"}),
    ("params.optimizer not ilike 'a%'", {"r02"}),
    ("params.optimizer in ('adam', 'sgd')", {"r01", "r02", "r05"}),
    ("params.optimizer not in ('adam', 'sgd')", {"r03"}),
    ("params.lr in (0.1, 0.001)", {"r02", "r03"}),
    ("params.lr in (0.1, 'auto')", {"r02", "r06"}),
    ("params.lr not in (0.1, 'auto')", {"r01", "r03", "r05"}),
    ("params.amp in (true)", {"r01"}),
    ("params.x is null", ALL - {"r06"}),
    ("params.lr is not null", ALL - {"r04"}),
    ("params.`model.depth` = 12", {"r01"}),
    ('config."model.depth" >= 12.0', {"r01"}),
    ("params.note = 'it''s'", {"r01"}),
    ('params.note = "it\'s"', {"r01"}),
    ("metrics.acc > 0.6", {"r01", "r03", "r05", "r06"}),
    ("metrics.acc >= 0.7 and metrics.acc < 0.95", {"r01", "r03", "r06"}),
    ("metrics.loss < 1", {"r01", "r05", "r06"}),
    ("metrics.loss != 0.1", {"r05", "r06"}),
    ("metrics.loss is null", {"r03", "r04"}),
    ("metrics.loss is not null", {"r01", "r02", "r05", "r06"}),
    ("not metrics.loss < 1", {"r02", "r03", "r04"}),
    ("metrics.`train loss` = 1.5", {"r01"}),
    ("metrics.acc in (0.5, 0.9)", {"r01", "r02"}),
    ("metrics.acc not in (0.5, 0.9)", {"r03", "r05", "r06"}),
    ("metrics.acc = 1e999 or metrics.acc > -1e999", ALL - {"r04"}),
    ("tags.stage = 'prod'", {"r01", "r06"}),
    ("tags.stage ilike 'PROD'", {"r01", "r03", "r06"}),
    ("tags.stage like 'p%'", {"r01", "r06"}),
    ("tags.stage != 'prod'", {"r02", "r03"}),
    ("tags.n = 1", {"r05"}),
    ("tags.pat like 'a_c'", {"r01", "r02", "r03"}),
    ("tags.pat like 'a*c'", {"r03"}),
    ("tags.pat ilike 'a_c'", {"r01", "r02", "r03", "r06"}),
    ("tags.path like 'c:\\%'", {"r06"}),
    ("tags.path = 'c:\\x'", {"r06"}),
    ("tags.stage in ('dev', 'Prod')", {"r02", "r03"}),
    ("tags.stage not in ('dev', 'Prod')", {"r01", "r06"}),
    ("tags.stage is null", {"r04", "r05"}),
    ("status = 'FINISHED'", {"r01", "r05"}),
    ("status = 'crashed'", {"r04"}),
    ("status = 'running'", {"r03"}),
    ("status in ('failed', 'KILLED')", {"r02", "r06"}),
    ("status != 'finished'", {"r02", "r03", "r04", "r06"}),
    ("status like 'f%'", {"r01", "r02", "r05"}),
    ("name = 'Sweep-A'", {"r02"}),
    ("name like 'sweep%'", {"r03"}),
    ("name ilike 'sweep%'", {"r02", "r03"}),
    ("name like '100% done'", {"r06"}),
    ("user = 'ana'", {"r01", "r03", "r06"}),
    ("host = 'h2'", {"r02"}),
    ("id = 'r03'", {"r03"}),
    ("run_id in ('r01', 'r02', 'zz')", {"r01", "r02"}),
    ("project = 'beta'", {"r05"}),
    ("project != 'beta'", ALL - {"r05"}),
    ("project like 'al%'", ALL - {"r05"}),
    ("project not in ('alpha')", {"r05"}),
    (f"created > {NOW - 998_000}", {"r04", "r05", "r06"}),
    ("created >= '2023-11-14T22:13:20Z'", set()),
    ("created < '2023-11-14T22:13:20'", ALL),
    ("ended is null", {"r03"}),
    ("ended is not null", ALL - {"r03"}),
    ("ended > 0", ALL - {"r03"}),
    ("not ended > 0", {"r03"}),
    ("ended = " + str(NOW - 60_000), {"r04"}),
    ("params.lr = 0.01 and tags.stage = 'prod'", {"r01"}),
    ("params.lr = 0.1 or tags.team = 'x'", {"r02", "r05"}),
    ("not (params.lr = 0.01 or status = 'running')", {"r02", "r04", "r06"}),
    ("not params.lr = 0.01", {"r02", "r03", "r04", "r06"}),
    ("params.lr = 0.1 or params.lr = 0.01 and tags.team = 'x'", {"r02", "r05"}),
    ("(params.lr = 0.1 or params.lr = 0.01) and tags.team = 'x'", {"r05"}),
    ("not not params.lr = 0.1", {"r02"}),
    ("((metrics.acc > 0.8) and not (tags.team = 'x'))", {"r01"}),
    ("params.epochs = 1 and params.epochs = true", set()),
    ("params.epochs = 1 and params.epochs != true", {"r03"}),
    ("params.amp = 1 or params.amp = true", {"r01"}),
]


@pytest.mark.parametrize(("filter", "expected"), MATCHES)
def test_filter_matches_exactly_the_expected_runs(db, filter, expected):
    """Each operator, type rule, NULL rule and boolean combination selects the right runs."""
    assert set(search(db, filter)) == expected


@pytest.mark.parametrize("cap", [0, 1000])
def test_candidate_and_phased_shapes_agree(db, monkeypatch, cap):
    """With and without the candidate shortcut, every filter selects the same runs."""
    monkeypatch.setattr(sql_search, "CANDIDATE_CAP", cap)
    for filter, expected in MATCHES:
        for order_by in ("metrics.acc desc", "params.epochs", "tags.stage desc"):
            assert set(search(db, filter, order_by=order_by)) == expected, (filter, order_by)


def test_project_scope_restricts_the_runs(db):
    """project_id limits the search to one project's runs."""
    assert search(db, project_id=pid("beta")) == ["r05"]
    assert set(search(db, "params.lr = 0.01", project_id=pid("alpha"))) == {"r01"}
    assert search(db, project_id=pid("nope")) == []


ORDERS = [
    (None, ["r06", "r05", "r04", "r03", "r02", "r01"]),
    ("created", ["r01", "r02", "r03", "r04", "r05", "r06"]),
    ("metrics.acc desc", ["r05", "r01", "r06", "r03", "r02", "r04"]),
    ("metrics.acc", ["r02", "r03", "r06", "r01", "r05", "r04"]),
    ("metrics.loss", ["r05", "r01", "r06", "r02", "r03", "r04"]),
    ("metrics.loss desc", ["r06", "r01", "r05", "r04", "r03", "r02"]),
    ("params.lr desc", ["r02", "r05", "r01", "r03", "r06", "r04"]),
    ("params.lr", ["r03", "r01", "r05", "r02", "r06", "r04"]),
    ("tags.lvl", ["r02", "r01", "r05", "r03", "r04", "r06"]),
    ("tags.lvl desc", ["r05", "r01", "r02", "r06", "r04", "r03"]),
    ("status, created desc", ["r04", "r02", "r05", "r01", "r06", "r03"]),
    ("ended desc", ["r04", "r06", "r05", "r02", "r01", "r03"]),
    ("project desc, created", ["r05", "r01", "r02", "r03", "r04", "r06"]),
    ("metrics.loss desc, params.lr", ["r06", "r01", "r05", "r03", "r02", "r04"]),
]


@pytest.mark.parametrize(("order_by", "expected"), ORDERS)
def test_order_by_sorts_missing_keys_last_in_both_directions(db, order_by, expected):
    """Orders follow the key, missing (and NaN) values last either way, ties by run id."""
    assert search(db, order_by=order_by) == expected


def test_default_order_is_newest_first(db):
    """No order_by means created desc, then run id desc."""
    assert search(db) == search(db, order_by="created desc")


# -- pagination -------------------------------------------------------------------------------


def _random_runs(n: int, seed_: int = 7) -> list[dict[str, Any]]:
    rnd = random.Random(seed_)
    word = lambda: "".join(rnd.choice("abcdefgh") for _ in range(4))  # noqa: E731
    specs = []
    for _ in range(n):
        metrics = {}
        if rnd.random() < 0.8:
            metrics["acc"] = rnd.choice([0.5, 0.25, rnd.random(), math.inf, -math.inf, NAN])
        lr: Any = rnd.choice([0.1, 0.01, 0.001, word(), None])
        specs.append({
            "id": f"{rnd.getrandbits(64):016x}",
            "created": NOW - rnd.randrange(40) * 1000,  # ties on created too
            "status": rnd.choice(["finished", "failed", "running"]),
            "heartbeat": NOW - rnd.choice([1000, 60_000]),
            "params": {} if lr is None else {"lr": lr},
            "metrics": metrics,
            "tags": {"grp": rnd.choice(["g1", "g2"])},
        })  # fmt: skip
        if rnd.random() < 0.7:
            specs[-1]["tags"]["w"] = word()
    return specs


def _pages(engine: sa.Engine, limit: int, **kw: Any) -> list[str]:
    ids, token, pages = [], None, 0
    with engine.connect() as conn:
        while True:
            page, token = search_run_ids(
                conn, project_id=None, limit=limit, page_token=token, now_ms=NOW, **kw
            )
            assert len(page) == limit or token is None
            ids += page
            pages += 1
            if token is None:
                return ids
            assert pages < 100


PAGED_ORDERS = [
    None, "created", "metrics.acc desc", "metrics.acc", "params.lr", "params.lr desc",
    "tags.w", "tags.w desc", "status, metrics.acc desc", "ended desc, params.lr",
    "created desc, tags.w desc, metrics.acc",
]  # fmt: skip


@pytest.mark.parametrize("cap", [0, 1000])
@pytest.mark.parametrize(
    "filter", [None, "tags.grp = 'g1'", "metrics.acc > 0.2", "not tags.w like 'a%'"]
)
def test_paging_visits_every_run_once_in_order(engine, monkeypatch, filter, cap):
    """Pages of 7 concatenate to the one-page order: no duplicates, none missing."""
    monkeypatch.setattr(sql_search, "CANDIDATE_CAP", cap)
    seed(engine, _random_runs(50))
    for order_by in PAGED_ORDERS:
        full = search(engine, filter, order_by)
        assert len(set(full)) == len(full)
        assert _pages(engine, 7, filter=filter, order_by=order_by) == full, order_by


def test_paging_order_matches_a_python_reference(engine):
    """The metric order equals a Python sort: values by direction, NaN/missing last, id ties."""
    specs = _random_runs(50)
    seed(engine, specs)

    def value(spec):
        v = spec["metrics"].get("acc")
        return None if v is None or math.isnan(v) else v

    for desc in (False, True):
        have = sorted(
            (s for s in specs if value(s) is not None),
            key=lambda s: (value(s), s["id"]),
            reverse=desc,
        )
        lack = sorted((s for s in specs if value(s) is None), key=lambda s: s["id"], reverse=desc)
        expected = [s["id"] for s in have + lack]
        assert (
            _pages(engine, 7, filter=None, order_by="metrics.acc" + (" desc" if desc else ""))
            == expected
        )


def test_a_token_keeps_working_when_the_query_shape_changes(engine, monkeypatch):
    """A token from one query shape (phased/candidates) still continues the same order."""
    seed(engine, _random_runs(50))
    kw = {"filter": "tags.grp = 'g1'", "order_by": "metrics.acc desc"}
    full = search(engine, **kw)
    for first_cap, then_cap in ((0, 1000), (1000, 0)):
        monkeypatch.setattr(sql_search, "CANDIDATE_CAP", first_cap)
        with engine.connect() as conn:
            page, token = search_run_ids(
                conn, project_id=None, limit=7, page_token=None, now_ms=NOW, **kw
            )
            monkeypatch.setattr(sql_search, "CANDIDATE_CAP", then_cap)
            rest, _ = search_run_ids(
                conn, project_id=None, limit=10_000, page_token=token, now_ms=NOW, **kw
            )
        assert page + rest == full


def _token(engine: sa.Engine, **kw: Any) -> str:
    with engine.connect() as conn:
        _, token = search_run_ids(conn, project_id=None, limit=1, page_token=None, now_ms=NOW, **kw)
    assert token is not None
    return token


def _recode(token: str, **changes: Any) -> str:
    data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    data.update(changes)
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


def test_forged_garbled_and_foreign_tokens_are_rejected(db):
    """Tokens that are not ours, or are for another search, raise InvalidArgumentError."""
    kw = {"filter": "metrics.acc > 0", "order_by": "metrics.acc desc"}
    good = _token(db, **kw)
    k = json.loads(base64.urlsafe_b64decode(good + "=" * (-len(good) % 4)))["k"]
    forged = [
        "!!!!", "abc", "x" * 400_000, _b64(b"not json"), _b64(b"[1, 2]"), _b64(b"{}"),
        _b64(b"[" * 50_000 + b"]" * 50_000), _b64(b"\xff\xfe"),
        _recode(good, v=2), _recode(good, m="x"), _recode(good, ph=-1), _recode(good, ph=7),
        _recode(good, ph="0"), _recode(good, k=k[:-1]), _recode(good, k=["x", *k[1:]]),
        _recode(good, k=[True, *k[1:]]), _recode(good, k=[*k[:-1], 5]), _recode(good, k=None),
        _recode(good, k=[2**70, *k[1:]]), _recode(good, fp="0" * 16),
        _token(db, filter="metrics.acc > 0", order_by="metrics.acc"),
        _token(db, filter="metrics.acc > 1e-9", order_by="metrics.acc desc"),
    ]  # fmt: skip
    with db.connect() as conn:
        search_run_ids(conn, project_id=None, limit=1, page_token=good, now_ms=NOW, **kw)
        for token in forged:
            with pytest.raises(InvalidArgumentError, match="page_token") as info:
                search_run_ids(conn, project_id=None, limit=1, page_token=token, now_ms=NOW, **kw)
            assert not isinstance(info.value, FilterSyntaxError)
        with pytest.raises(InvalidArgumentError, match="page_token"):
            search_run_ids(conn, project_id="p" * 32, limit=1, page_token=good, now_ms=NOW, **kw)


@pytest.mark.parametrize("limit", [-1, 0, 10_001, 10**9, True, 1.5, "10"])
def test_limit_out_of_range_is_an_invalid_argument(db, limit):
    """TESTS.md row 36: limit outside 1..10,000 raises InvalidArgumentError naming it."""
    with db.connect() as conn, pytest.raises(InvalidArgumentError, match=r"limit.*1 and 10000"):
        search_run_ids(
            conn,
            project_id=None,
            filter=None,
            order_by=None,
            limit=limit,
            page_token=None,
            now_ms=NOW,
        )


def test_limit_bounds_are_accepted(db):
    """limit 1 and 10,000 are valid."""
    with db.connect() as conn:
        ids, token = search_run_ids(
            conn, project_id=None, filter=None, order_by=None, limit=1, page_token=None, now_ms=NOW
        )
        assert len(ids) == 1
        assert token is not None
    assert len(search(db, limit=10_000)) == 6


# -- TESTS.md rows 32-35 -----------------------------------------------------------------------


def _table_counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in metadata.sorted_tables
        }


def test_sql_injection_in_a_filter_is_a_parse_error_and_tables_survive(db):
    """TESTS.md row 32: `metrics.loss < 1; DROP TABLE runs` fails on ';' and drops nothing."""
    before = _table_counts(db)
    with pytest.raises(FilterSyntaxError, match=r"';' \(at position 16\)"):
        search(db, "metrics.loss < 1; DROP TABLE runs")
    with pytest.raises(FilterSyntaxError):
        search(db, "name = 'x'); DROP TABLE runs; --")
    assert search(db, "name = 'x''); DROP TABLE runs; --'") == []
    assert _table_counts(db) == before


def test_tautology_injection_never_widens_the_match(db, engine):
    """TESTS.md row 33: `params.lr = '' OR '1'='1'` never matches every run.

    The unquoted form does not parse (a string cannot start a predicate); the quoted form
    is one literal string compared to the param, matching only a run whose value it is.
    """
    with pytest.raises(FilterSyntaxError, match="expected an identifier"):
        search(db, "params.lr = '' OR '1'='1'")
    assert search(db, "params.lr = ''' OR ''1''=''1'") == []
    seed(engine, [{"id": "r99", "project": "gamma", "params": {"lr": "' OR '1'='1"}}])
    assert search(db, "params.lr = ''' OR ''1''=''1'") == ["r99"]
    assert search(db, "tags.stage = '' OR tags.stage = '1'") == []


def test_ten_thousand_wildcards_answer_quickly(db):
    """TESTS.md row 34: a LIKE of ~10^4 '%' runs as a bound pattern within a second."""
    for pattern in ("%" * 9_980, "%a" * 4_990):
        started = time.perf_counter()
        search(db, f"name like '{pattern}'")
        search(db, f"tags.stage ilike '{pattern}'")
        assert time.perf_counter() - started < 1.0
    with pytest.raises(FilterSyntaxError, match="longer than"):
        search(db, "name like '" + "%" * 100_000 + "'")


def test_nesting_at_the_limit_compiles_and_runs(db):
    """A filter nested 100 levels deep compiles to SQL and runs on the database."""
    text, depth = "params.lr = 0.1", 0
    while depth + 3 <= 98:
        text = f"(not (tags.stage = 'x' or {text}))"
        depth += 3
    text = f"not ({text} and metrics.acc > 0)"
    assert parse_filter(text) is not None
    assert set(search(db, text)) <= ALL


DEEP_LEAVES = [
    "params.x not in ('a', 1, true)", "params.lr != 0.01", "tags.stage not ilike 'p%'",
    "metrics.acc not in (1, 2)", "ended > 5", "status in ('a', 'b')", "project = 'alpha'",
    "params.x is null", "metrics.loss < 1",
]  # fmt: skip


def _deep_filter(rnd: random.Random, depth: int) -> str:
    text = rnd.choice(DEEP_LEAVES)
    for _ in range(depth):
        shape = rnd.choice(["not {}", "({} and {})", "({} or {})", "({} and not {})"])
        text = (
            shape.format(rnd.choice(DEEP_LEAVES), text)
            if shape.count("{}") == 2
            else shape.format(text)
        )
    return text


def test_random_deep_filters_run_with_paging(db):
    """Filters nested up to the limit run (SQLite's ~20-level parser stack is never hit)."""
    rnd = random.Random(3)
    orders = [None, "metrics.acc desc, params.lr, tags.stage desc, ended"]
    with db.connect() as conn:
        for _ in range(25):
            text = _deep_filter(rnd, rnd.randint(20, 49))
            if parse_filter(text) is None:
                continue
            for order_by in orders:
                kw = {"project_id": None, "filter": text, "order_by": order_by, "now_ms": NOW}
                ids, token = search_run_ids(conn, limit=1, page_token=None, **kw)
                if token is not None:
                    search_run_ids(conn, limit=10, page_token=token, **kw)


@pytest.mark.parametrize(
    "order_by",
    ["metrics.loss; --", "bogus", "metrics.loss desc; DROP TABLE runs", "params.lr sideways"],
)
def test_bad_order_by_is_a_parse_error(db, order_by):
    """TESTS.md row 35: a bad order_by raises FilterSyntaxError and runs nothing."""
    before = _table_counts(db)
    with pytest.raises(FilterSyntaxError):
        search(db, order_by=order_by)
    assert _table_counts(db) == before


# -- query plans (SQLite) -----------------------------------------------------------------------


def _plans(engine: sa.Engine, **kw: Any) -> list[str]:
    captured: list[tuple[str, Any]] = []

    def grab(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT RUNS.RUN_ID"):
            captured.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", grab)
    try:
        search(engine, **kw)
    finally:
        sa.event.remove(engine, "before_cursor_execute", grab)
    with engine.connect() as conn:
        return [
            "\n".join(row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, args))
            for sql, args in captured
        ]


# sqlite_stat1 as ANALYZE writes it for the 100,000-run benchmark database
BENCH_STATS = [
    ("metric_summaries", "ix_summaries_key_last_run", "500000 100000 1 1"),
    ("metric_summaries", "sqlite_autoindex_metric_summaries_1", "500000 5 1"),
    ("tags", "ix_tags_key_value_run", "300000 100000 3 1"),
    ("tags", "sqlite_autoindex_tags_1", "300000 3 1"),
    ("params", "ix_params_key_value", "1000000 100000 11"),
    ("params", "ix_params_key_num_run", "1000000 100000 11 11 1"),
    ("params", "sqlite_autoindex_params_1", "1000000 10 1"),
    ("runs", "ix_runs_created", "100000 1"),
    ("runs", "ix_runs_project_created", "100000 100000 1"),
    ("runs", "sqlite_autoindex_runs_1", "100000 1"),
]


def _plan_db(tmp_path, stats: bool) -> sa.Engine:
    """The six runs in SQLite, optionally with ANALYZE statistics of the benchmark database."""
    eng = sa.create_engine(f"sqlite:///{tmp_path / 'plan.db'}")
    metadata.create_all(eng)
    seed(eng, RUNS)
    if stats:
        with eng.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.exec_driver_sql("DELETE FROM sqlite_stat1")
            conn.exec_driver_sql("INSERT INTO sqlite_stat1 VALUES (?, ?, ?)", BENCH_STATS)
        eng.dispose()  # statistics are read when a connection opens
    return eng


@pytest.mark.parametrize("stats", [False, True], ids=["no-stats", "analyzed"])
def test_metric_order_walks_the_summary_index_on_sqlite(tmp_path, monkeypatch, stats):
    """The benchmark query reads ix_summaries_key_last_run in order, with no sort at all."""
    monkeypatch.setattr(sql_search, "CANDIDATE_CAP", 0)
    eng = _plan_db(tmp_path, stats)
    plans = _plans(
        eng, filter="params.lr = 0.01 and metrics.acc > 0.5", order_by="metrics.acc desc", limit=100
    )
    assert len(plans) == 1  # the range pushed down makes the "missing" phase unnecessary
    assert "INDEX ix_summaries_key_last_run (key=? AND last_value>?)" in plans[0]
    assert "TEMP B-TREE" not in plans[0]  # nor for the run id tie-break (0008)
    lacking = _plans(eng, filter="params.lr = 0.01", order_by="metrics.acc desc", limit=100)
    assert len(lacking) == 2
    assert "ix_summaries_key_last_run" in lacking[0]
    alpha = pid("alpha")
    by_param = _plans(
        eng, filter="params.optimizer = 'adam'", order_by="params.lr desc", project_id=alpha
    )
    assert "INDEX ix_params_key_num_run (key=?" in by_param[0]
    assert "TEMP B-TREE" not in by_param[0]
    either = "params.lr = 0.1 or not status = 'x'"
    mixed = _plans(eng, filter=either, order_by="metrics.b desc", project_id=alpha)
    assert "INDEX ix_summaries_key_last_run" in mixed[0]
    by_tag = _plans(eng, filter=None, order_by="tags.stage", project_id=alpha)
    assert "INDEX ix_tags_key_value_run" in by_tag[0]
    assert "TEMP B-TREE" not in by_tag[0]
    listing = _plans(eng, filter=None, order_by=None, project_id=pid("alpha"), limit=100)
    assert "ix_runs_project_created" in listing[0]
    assert "TEMP B-TREE FOR ORDER BY" not in listing[0]
    eng.dispose()


@pytest.mark.parametrize("stats", [False, True], ids=["no-stats", "analyzed"])
def test_selective_terms_drive_the_search_on_sqlite(tmp_path, stats):
    """A rare tag value restricts the runs through the primary key, not a project scan."""
    eng = _plan_db(tmp_path, stats)
    plans = _plans(
        eng, filter="tags.git = 'abc'", order_by="metrics.acc desc", project_id=pid("alpha")
    )
    assert "SEARCH runs USING INDEX sqlite_autoindex_runs_1 (run_id=?)" in plans[0]
    assert "ix_tags_key_value" in plans[0]
    eng.dispose()


# -- every literal is a bound parameter -------------------------------------------------------

SAFE_TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="%_*?[\\"), max_size=12
).map(lambda s: "Zq" + s)
NUMBERS = st.one_of(st.integers(-(2**62), 2**62), st.floats(allow_nan=False, width=64))


def _ident(kinds: list[str], keys: st.SearchStrategy[str] = SAFE_TEXT) -> st.SearchStrategy[Ident]:
    return st.builds(Ident, st.sampled_from(kinds), keys)


def _tuples(values: st.SearchStrategy[Any]) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.lists(values, min_size=1, max_size=3).map(tuple)


def _leaf() -> st.SearchStrategy[Any]:
    cmp_ops = st.sampled_from(["=", "!=", "<", "<=", ">", ">="])
    like_ops = st.sampled_from(["LIKE", "ILIKE", "NOT LIKE", "NOT ILIKE"])
    text_attr = _ident(
        ["attr"], st.sampled_from(["status", "name", "run_id", "user", "host", "project"])
    )
    time_attr = _ident(["attr"], st.sampled_from(["created", "ended"]))
    param, metric, tag = _ident(["param"]), _ident(["metric"]), _ident(["tag"])
    param_values = st.one_of(NUMBERS, SAFE_TEXT, st.booleans())
    return st.one_of(
        st.builds(Compare, metric, cmp_ops, NUMBERS),
        st.builds(Compare, param, cmp_ops, st.one_of(NUMBERS, SAFE_TEXT)),
        st.builds(Compare, param, st.sampled_from(["=", "!="]), st.booleans()),
        st.builds(Compare, _ident(["param", "tag"]), like_ops, SAFE_TEXT),
        st.builds(Compare, tag, cmp_ops, SAFE_TEXT),
        st.builds(Compare, text_attr, st.one_of(cmp_ops, like_ops), SAFE_TEXT),
        st.builds(Compare, time_attr, cmp_ops, st.integers(-(2**62), 2**62)),
        st.builds(In, metric, _tuples(NUMBERS), st.booleans()),
        st.builds(In, param, _tuples(param_values), st.booleans()),
        st.builds(In, _ident(["tag"]), _tuples(SAFE_TEXT), st.booleans()),
        st.builds(In, text_attr, _tuples(SAFE_TEXT), st.booleans()),
        st.builds(IsNull, _ident(["param", "metric", "tag"]), st.booleans()),
    )


TREES = st.recursive(
    _leaf(),
    lambda kids: st.one_of(
        st.lists(kids, min_size=2, max_size=3).map(lambda xs: And(tuple(xs))),
        st.lists(kids, min_size=2, max_size=3).map(lambda xs: Or(tuple(xs))),
        kids.map(Not),
    ),
    max_leaves=8,
)


def _literals(node: Any) -> Iterator[Any]:
    if isinstance(node, And | Or):
        for item in node.items:
            yield from _literals(item)
    elif isinstance(node, Not):
        yield from _literals(node.item)
    else:
        if node.ident.kind != "attr":
            yield node.ident.key
        if isinstance(node, Compare):
            yield node.value.lower() if node.ident.key == "status" else node.value
        elif isinstance(node, In):
            yield from (v.lower() if node.ident.key == "status" else v for v in node.values)


def _bound_values(compiled: Any) -> list[Any]:
    out: list[Any] = []
    for value in compiled.params.values():
        out.extend(value if isinstance(value, list | tuple) else [value])
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TREES)
def test_every_literal_is_a_bound_parameter(node):
    """Property: compiled SQL contains no literal text; every literal is among the bound params."""
    for name, dialect in (("sqlite", sqlite.dialect()), ("postgresql", postgresql.dialect())):
        stmt = sa.select(runs.c.run_id).where(compile_filter(node, now_ms=NOW, dialect=name))
        compiled = stmt.compile(dialect=dialect)
        sql = str(compiled)
        bound = _bound_values(compiled)
        for literal in _literals(node):
            if isinstance(literal, bool):
                assert ("true" if literal else "false") in bound
            elif isinstance(literal, str):
                assert literal not in sql
                assert literal in bound
            else:
                assert float(literal) in bound or literal in bound


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_any_text_parses_to_bound_sql_or_raises(text):
    """Property (TESTS.md): any string raises FilterSyntaxError or compiles with bound values."""
    try:
        node = parse_filter(text)
    except FilterSyntaxError:
        return
    if node is not None:
        compiled = (
            sa.select(runs.c.run_id)
            .where(compile_filter(node, now_ms=NOW))
            .compile(dialect=sqlite.dialect())
        )
        assert "'" not in str(compiled)
