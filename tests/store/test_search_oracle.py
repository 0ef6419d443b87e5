"""Run search checked against a brute-force Python evaluation, on SQLite and PostgreSQL.

A few thousand random runs (ties in created time and metric values, missing keys, NaN last
values, numeric and text values of one param, crashed runs) are bulk-loaded as the store
writes them. For each common query shape (the ones ``bench/bench_search_scale.py`` times),
every page of ``store.search_runs`` is read and the concatenated ids must equal the brute-force
result exactly, in order; page tokens must give the same page when reused. Each shape runs
twice: with the candidate-list shape allowed (the default cap) and forced off (cap 0), so a
rewrite of either query shape that drops, duplicates or misorders a run fails here.
"""

from __future__ import annotations

import math
import os
import random
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from mltrail.store.sql import search as sql_search
from mltrail.store.sql.params import encode_param
from mltrail.store.sql.schema import metric_summaries, params, projects, runs, tags

N_RUNS = 2000
PROJECT = "oracle"
T0 = 1_600_000_000_000
OPTS = ["adam", "sgd", "adamw"]
Run = dict[str, Any]


def _dataset(seed: int = 7) -> list[Run]:
    rnd = random.Random(seed)
    future = int(time.time() * 1000) + 86_400_000  # a live heartbeat for the whole test
    out = []
    for i in range(N_RUNS):
        status = rnd.choice(["finished", "finished", "failed", "killed", "running"])
        run: Run = {
            "run_id": f"{rnd.getrandbits(128):032x}",
            "created": T0 + (i // 3) * 1000,  # ties in created time: the run id decides
            "status": status,
            "crashed": status == "running" and rnd.random() < 0.5,
            "params": {},
            "tags": {},
            "metrics": {},
        }
        run["heartbeat"] = run["created"] if run["crashed"] else future
        p = run["params"]
        if rnd.random() < 0.9:
            p["optimizer"] = rnd.choice(OPTS)
        if rnd.random() < 0.9:  # lr: mostly numbers, some text, a few bools (text-only)
            r = rnd.random()
            p["lr"] = rnd.choice([0.1, 0.01, 0.001, 0.0001]) if r < 0.8 else (
                rnd.choice(["auto", "cosine"]) if r < 0.95 else True)  # fmt: skip
        p["seed"] = rnd.randint(0, 50)
        for key in ("acc", "loss"):
            if rnd.random() < 0.9:
                value = round(rnd.random(), 2)  # ties: the run id decides
                run["metrics"][key] = math.nan if rnd.random() < 0.05 else value
        if rnd.random() < 0.95:
            run["tags"]["stage"] = rnd.choice(["dev", "prod"])
        run["tags"]["git"] = f"{rnd.randrange(300):x}"
        out.append(run)
    return out


DATA = _dataset()


def _load(engine: sa.Engine, data: list[Run]) -> None:
    """Rows exactly as ``apply_batch`` writes them (NaN last values as NULL)."""
    pid = "0" * 16
    rows: dict[str, list[dict[str, Any]]] = {"r": [], "p": [], "t": [], "m": []}
    for run in data:
        rid = run["run_id"]
        ended = run["status"] != "running"
        rows["r"].append({
            "run_id": rid, "project_id": pid, "name": f"n{rid[:6]}", "status": run["status"],
            "created_ms": run["created"], "end_ms": run["created"] + 5 if ended else None,
            "heartbeat_ms": run["heartbeat"], "heartbeat_s": 1.0, "user_name": "u",
            "host": "h", "command": "c", "config": "{}",
        })  # fmt: skip
        for key, value in run["params"].items():
            text, vtype, num = encode_param(value)
            rows["p"].append({"run_id": rid, "key": key, "value": text, "vtype": vtype,
                              "value_num": num})  # fmt: skip
        for key, value in run["tags"].items():
            rows["t"].append({"run_id": rid, "key": key, "value": value})
        for key, value in run["metrics"].items():
            last = None if math.isnan(value) else value
            rows["m"].append({
                "run_id": rid, "key": key, "last_value": last, "last_step": 1, "last_ms": 1,
                "min_value": last, "max_value": last, "count": 1, "open_seq": 0, "open_n": 1,
            })  # fmt: skip
    # another project's run, with keys of its own: never in PROJECT's results or keys
    other = {**rows["r"][0], "run_id": "f" * 32, "project_id": "1" * 16}
    rows["r"].append(other)
    rows["p"].append({"run_id": other["run_id"], "key": "zz_other", "value": "1", "vtype": "i",
                      "value_num": 1.0})  # fmt: skip
    rows["t"].append({"run_id": other["run_id"], "key": "zz_other", "value": "x"})
    rows["m"].append({**rows["m"][0], "run_id": other["run_id"], "key": "zz_other"})
    with engine.begin() as conn:
        conn.execute(sa.insert(projects), [{"project_id": pid, "name": PROJECT, "created_ms": 0},
                                           {"project_id": "1" * 16, "name": "other",
                                            "created_ms": 0}])  # fmt: skip
        for table, key in ((runs, "r"), (params, "p"), (tags, "t"), (metric_summaries, "m")):
            conn.execute(sa.insert(table), rows[key])


# -- the brute-force evaluation ------------------------------------------------------------


def _status(run: Run) -> str:
    return "crashed" if run["crashed"] else str(run["status"])


def _num(run: Run, key: str) -> float | None:
    v = run["params"].get(key)
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _metric(run: Run, key: str) -> float | None:
    v = run["metrics"].get(key)
    return None if v is None or math.isnan(v) else v


def _order_created(runs_: list[Run], desc: bool = True) -> list[str]:
    ordered = sorted(runs_, key=lambda r: (r["created"], r["run_id"]), reverse=desc)
    return [r["run_id"] for r in ordered]


def _order_metric(runs_: list[Run], key: str, desc: bool) -> list[str]:
    """Runs with a (non-NaN) last value by it, then the rest; run id breaks ties."""
    has = [r for r in runs_ if _metric(r, key) is not None]
    rest = [r for r in runs_ if _metric(r, key) is None]
    has.sort(key=lambda r: (_metric(r, key), r["run_id"]), reverse=desc)
    rest.sort(key=lambda r: r["run_id"], reverse=desc)
    return [r["run_id"] for r in has + rest]


def _order_param(runs_: list[Run], key: str, desc: bool) -> list[str]:
    """Numbers (then by text), then text-only values, then runs lacking the param."""
    nums = [r for r in runs_ if _num(r, key) is not None]
    texts = [r for r in runs_ if key in r["params"] and _num(r, key) is None]
    rest = [r for r in runs_ if key not in r["params"]]
    text = lambda r: encode_param(r["params"][key])[0]  # noqa: E731
    nums.sort(key=lambda r: (_num(r, key), text(r), r["run_id"]), reverse=desc)
    texts.sort(key=lambda r: (text(r), r["run_id"]), reverse=desc)
    rest.sort(key=lambda r: r["run_id"], reverse=desc)
    return [r["run_id"] for r in nums + texts + rest]


def _lt(key: str, bound: float) -> Callable[[Run], bool]:
    return lambda r: (v := _num(r, key)) is not None and v <= bound


Shape = tuple[str | None, str | None, Callable[[Run], bool], Callable[[list[Run]], list[str]]]
SHAPES: dict[str, Shape] = {
    "newest": (None, None, lambda r: True, _order_created),
    "oldest": (None, "created asc", lambda r: True, lambda rs: _order_created(rs, desc=False)),
    "param_eq": ("params.optimizer = 'adam'", None,
                 lambda r: r["params"].get("optimizer") == "adam", _order_created),
    "param_num_range": ("params.lr <= 0.001", None, _lt("lr", 0.001), _order_created),
    "metric_last_gt": ("metrics.acc > 0.5", None,
                       lambda r: (_metric(r, "acc") or 0) > 0.5, _order_created),
    "tag_eq": ("tags.stage = 'prod'", None,
               lambda r: r["tags"].get("stage") == "prod", _order_created),
    "tag_rare": ("tags.git = 'a'", None, lambda r: r["tags"]["git"] == "a", _order_created),
    "status": ("status = 'failed'", None, lambda r: _status(r) == "failed", _order_created),
    "status_crashed": ("status = 'crashed'", None,
                       lambda r: _status(r) == "crashed", _order_created),
    "order_metric_desc": (None, "metrics.acc desc", lambda r: True,
                          lambda rs: _order_metric(rs, "acc", True)),
    "order_metric_asc": (None, "metrics.loss", lambda r: True,
                         lambda rs: _order_metric(rs, "loss", False)),
    "filter_and_order": ("params.optimizer = 'adam' and tags.stage = 'prod'", "metrics.acc desc",
                         lambda r: r["params"].get("optimizer") == "adam"
                         and r["tags"].get("stage") == "prod",
                         lambda rs: _order_metric(rs, "acc", True)),
    "metric_range_order_same": ("metrics.loss < 0.3", "metrics.loss desc",
                                lambda r: (v := _metric(r, "loss")) is not None and v < 0.3,
                                lambda rs: _order_metric(rs, "loss", True)),
    "order_param_desc": ("metrics.acc >= 0.2", "params.lr desc",
                         lambda r: (_metric(r, "acc") or 0) >= 0.2,
                         lambda rs: _order_param(rs, "lr", True)),
    "order_param_asc": (None, "params.lr asc", lambda r: True,
                        lambda rs: _order_param(rs, "lr", False)),
    "or_not": ("(params.optimizer = 'sgd' or tags.stage = 'prod') and not status = 'failed'",
               "metrics.acc desc",
               lambda r: (r["params"].get("optimizer") == "sgd"
                          or r["tags"].get("stage") == "prod") and _status(r) != "failed",
               lambda rs: _order_metric(rs, "acc", True)),
}  # fmt: skip


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def loaded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """One store per backend, loaded once for the module (the data never changes)."""
    from mltrail.store.registry import open_store

    pg_url = os.environ.get("MLTRAIL_TEST_PG_URL", "")
    admin, name = None, ""
    if request.param == "sqlite":
        uri = str(tmp_path_factory.mktemp("oracle") / "store")
    else:
        if not pg_url:
            pytest.skip("PostgreSQL not configured: set MLTRAIL_TEST_PG_URL")
        url = sa.make_url(pg_url).set(drivername="postgresql+psycopg")
        admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        name = f"t_{uuid.uuid4().hex[:12]}"
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        uri = sa.make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    store: Any = open_store(uri, shared=False)
    _load(store._engine, DATA)
    yield store
    store.close()
    if admin is not None:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        admin.dispose()


def _all_pages(store: Any, flt: str | None, order: str | None, limit: int) -> list[str]:
    ids: list[str] = []
    token = None
    for _ in range(N_RUNS // limit + 2):
        page = store.search_runs(PROJECT, flt, order, limit, token)
        ids += [r.run_id for r in page.runs]
        if token is not None and len(ids) <= 2 * limit:  # a reused token: the same page
            again = store.search_runs(PROJECT, flt, order, limit, token)
            assert [r.run_id for r in again.runs] == [r.run_id for r in page.runs]
        token = page.next_token
        if token is None:
            return ids
    raise AssertionError("pagination did not end")


@pytest.mark.parametrize("cap", [sql_search.CANDIDATE_CAP, 0], ids=["auto", "phased"])
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_search_matches_brute_force(
    loaded: Any, shape: str, cap: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sql_search, "CANDIDATE_CAP", cap)
    flt, order, keep, ordering = SHAPES[shape]
    expected = ordering([r for r in DATA if keep(r)])
    assert expected, f"{shape}: the dataset gives no match; the test would prove nothing"
    top = store_page = loaded.search_runs(PROJECT, flt, order, 100)
    assert [r.run_id for r in top.runs] == expected[:100]
    assert (store_page.next_token is None) == (len(expected) <= 100)
    assert _all_pages(loaded, flt, order, 211) == expected


def test_returned_runs_carry_their_values(loaded: Any) -> None:
    """The top page's records hold each run's params, tags and metric summaries."""
    by_id = {r["run_id"]: r for r in DATA}
    page = loaded.search_runs(PROJECT, "tags.stage = 'dev'", "metrics.loss desc", 100)
    assert len(page.runs) == 100
    for rec in page.runs:
        run = by_id[rec.run_id]
        assert rec.tags == run["tags"]
        assert rec.params == run["params"]
        assert set(rec.metrics) == set(run["metrics"])
        for key, value in run["metrics"].items():
            got = rec.metrics[key].last
            assert (math.isnan(got) and math.isnan(value)) or got == value
        assert rec.status.value == _status(run)


def test_project_keys_match_brute_force(loaded: Any) -> None:
    """The column chooser's keys (a skip scan of the key indexes) are the project's keys."""
    expected = {
        kind: sorted({k for r in DATA for k in r[kind]}) for kind in ("params", "metrics", "tags")
    }
    assert loaded.project_keys(PROJECT, 1000) == expected
    assert loaded.project_keys(PROJECT, 2) == {k: v[:2] for k, v in expected.items()}
    assert loaded.project_keys("other", 1000) == dict.fromkeys(expected, ["zz_other"])
    assert loaded.project_keys("missing", 1000) == dict.fromkeys(expected, [])
