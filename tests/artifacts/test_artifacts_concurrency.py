"""Processes logging versions of one artifact at once: one version per content, no gaps.

Runs on SQLite and, when configured, PostgreSQL (the ``store_uri`` fixture).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from mltrail.store.registry import open_store

CHILD = Path(__file__).with_name("_conc_child.py")
N = 6


def _race(store_uri: str, tmp_path: Path, keys: list[str]) -> list[int]:
    """Start one child per key, release them together, return the versions they got."""
    first = open_store(store_uri, shared=False)  # create the schema before the race
    first.close()
    gate = tmp_path / "gate"
    procs = [
        subprocess.Popen(
            [sys.executable, str(CHILD), store_uri, str(gate), key],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for key in keys
    ]
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("gate.*.ready"))) < len(keys) and time.monotonic() < deadline:
        if any(p.poll() not in (None, 0) for p in procs):
            break
        time.sleep(0.01)
    gate.touch()
    results = [(p.communicate(timeout=60), p.returncode) for p in procs]
    for (_, err), code in results:
        assert code == 0, err
    return [int(out.strip()) for (out, _), _ in results]


def _stored(store_uri: str) -> list[tuple[int, str]]:
    store = open_store(store_uri, shared=False)
    try:
        return [(v.version, v.digest) for v in store.artifacts().list_versions("proj", "shared")]  # type: ignore[attr-defined]
    finally:
        store.close()


def test_same_content_from_many_processes_is_one_version(store_uri: str, tmp_path: Path) -> None:
    """N processes logging identical content at once all get v1, and only v1 exists."""
    assert _race(store_uri, tmp_path, ["same"] * N) == [1] * N
    assert [v for v, _ in _stored(store_uri)] == [1]


def test_different_contents_get_distinct_versions_without_gaps(
    store_uri: str, tmp_path: Path
) -> None:
    """N processes logging N contents at once get v1..vN, each once, one per digest."""
    got = _race(store_uri, tmp_path, [f"c{i}" for i in range(N)])
    assert sorted(got) == list(range(1, N + 1))
    stored = _stored(store_uri)
    assert [v for v, _ in stored] == list(range(1, N + 1))
    assert len({d for _, d in stored}) == N
