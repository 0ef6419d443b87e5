"""``mltrail store check``: what a store holds and whether it is whole.

Reports the schema revision, the size, counts, orphans (database rows whose run is gone,
blobs no run links to, objects no artifact version names, run-file bytes no run file
points at) and integrity (the database's own check, and object digests: a sample, or every
object with ``full``).
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from mltrail.errors import CorruptObjectError, NotFoundError

if TYPE_CHECKING:
    from mltrail.store.copy.endpoint import Endpoint

__all__ = ["CheckReport", "check_store"]

#: objects hashed when the check is not ``full``
SAMPLE_OBJECTS = 64


@dataclass
class CheckReport:
    """The findings of :func:`check_store`."""

    store: str
    revision: str | None = None
    head: str | None = None
    size_bytes: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    orphans: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    objects_checked: int = 0
    check_s: float = 0.0

    @property
    def ok(self) -> bool:
        """No integrity problem (orphans are reported, not failures)."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {**asdict(self), "ok": self.ok}


def _database(uri: str, report: CheckReport) -> None:
    from mltrail.store.sql.maintenance import check_database

    db = check_database(uri)
    report.revision, report.head, report.size_bytes = db.revision, db.head, db.size_bytes
    report.counts.update(db.counts)
    report.orphans.update(db.orphans)
    report.problems.extend(f"database: {line}" for line in db.integrity)
    if db.revision != db.head:
        report.problems.append(
            f"schema revision {db.revision} is not {db.head}: run mltrail db upgrade"
        )


def _objects(end: Endpoint, report: CheckReport, full: bool) -> None:
    from mltrail.objects.base import ListableObjectStore
    from mltrail.store.copy.catalog import object_set
    from mltrail.store.optional import HasArtifacts

    if end.objects is None or not isinstance(end.objects, ListableObjectStore):
        return
    stored = set(end.objects.iter_digests())
    report.counts["objects"] = len(stored)
    named: set[str] = set()
    if isinstance(end.store, HasArtifacts):
        arts = end.store.artifacts()
        versions = [
            v
            for p in end.store.list_projects()
            for a in arts.list_artifacts(p.name)
            for v in arts.list_versions(p.name, a.name)
        ]
        named = object_set(end.objects, versions)
        missing = sorted(named - stored)
        report.problems.extend(f"object {d} named by a version is missing" for d in missing[:20])
    report.orphans["objects_no_version_names"] = len(stored - named)
    pool = sorted(stored)
    chosen = pool if full else random.sample(pool, min(SAMPLE_OBJECTS, len(pool)))
    for digest in chosen:
        try:
            end.objects.verify(digest)
        except (CorruptObjectError, NotFoundError) as exc:
            report.problems.append(str(exc))
    report.objects_checked = len(chosen)


def _file_bytes(end: Endpoint, report: CheckReport) -> None:
    """Run-file bytes under the root that no run file points at."""
    if end.root is None or end.files is None or "://" in end.root and end.root.startswith("http"):
        return
    from mltrail.objects.fsspec_store import filesystem
    from mltrail.store.copy.copier import list_run_ids

    fs, path = filesystem(end.root)
    base = f"{path.rstrip('/')}/files/sha256"
    try:
        stored = {p.rsplit("/", 1)[-1] for p in fs.find(base)}
    except FileNotFoundError:
        stored = set()
    stored = {name for name in stored if len(name) == 64}
    named: set[str] = set()
    for project in end.store.list_projects():
        for run_id in list_run_ids(end.store, project.name):
            named |= {f.digest.removeprefix("sha256:") for f in end.files.list(run_id)}
    report.counts["run_file_bytes"] = len(stored)
    report.orphans["run_file_bytes_no_run_names"] = len(stored - named)
    for hexdigest in sorted(named - stored)[:20]:
        report.problems.append(f"run file bytes sha256:{hexdigest} are missing")


def check_store(uri: str, artifacts: str | None = None, *, full: bool = False) -> CheckReport:
    """Check the store at ``uri`` (with its bytes under ``artifacts``, as for the server);
    read-only: an older schema is reported, never migrated.

    Raises:
        StoreError: the store cannot be read.
    """
    from mltrail.store.copy.endpoint import open_endpoint
    from mltrail.store.registry import resolve_location

    started = time.perf_counter()
    location = resolve_location(uri)
    report = CheckReport(location.display)
    sql = location.scheme in ("sqlite", "postgresql")
    if sql:
        _database(location.uri, report)
        if report.revision != report.head:
            report.check_s = time.perf_counter() - started
            return report
    end = open_endpoint(uri, artifacts, migrate=False)
    try:
        if not sql:
            found = end.store.list_projects()
            report.counts["projects"] = len(found)
            report.counts["runs"] = sum(p.run_count for p in found)
        _objects(end, report, full)
        _file_bytes(end, report)
    finally:
        end.close()
    report.check_s = time.perf_counter() - started
    return report
