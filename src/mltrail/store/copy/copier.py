"""``copy_store``: every run of one store (or one project) into another, then verified.

Order: runs (each one atomic batch, skipped when the destination has it), their run files,
artifact objects and versions, run inputs, the model registry; then verification: the run
counts, a fingerprint of every run read back from both sides (records, every series point,
state, blobs, console, files), a fingerprint of each project's artifacts and models, and
the presence of every object the versions name.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from mltrail.errors import NotFoundError
from mltrail.store.copy.catalog import (
    CatalogCounts,
    catalog_fingerprint,
    copy_artifacts,
    copy_inputs,
    copy_registry,
    object_set,
)
from mltrail.store.copy.runs import file_rows, read_run, run_batch, run_fingerprint

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from mltrail.store.base import TrackingStore
    from mltrail.store.copy.endpoint import Endpoint

__all__ = ["CopyReport", "copy_store", "list_run_ids"]

#: runs read and written at once (stores are thread-safe; a server or PostgreSQL overlaps
#: round trips, SQLite overlaps reading the source with writing the destination)
WORKERS = 4
_T = TypeVar("_T")


@dataclass
class CopyReport:
    """What a copy did and what its verification found."""

    source: str
    destination: str
    projects: list[str] = field(default_factory=list)
    runs: int = 0
    runs_added: int = 0
    runs_present: int = 0
    points: int = 0
    payload_bytes: int = 0
    files_added: int = 0
    files_present: int = 0
    file_bytes: int = 0
    catalog: CatalogCounts = field(default_factory=CatalogCounts)
    mismatches: list[str] = field(default_factory=list)
    copy_s: float = 0.0
    verify_s: float = 0.0

    @property
    def ok(self) -> bool:
        """True when verification found nothing different or missing."""
        return not self.mismatches

    @property
    def added_anything(self) -> bool:
        """Whether this copy changed the destination."""
        c = self.catalog
        return bool(
            self.runs_added
            or self.files_added
            or c.versions_added
            or c.objects_added
            or c.aliases_set
            or c.inputs_added
            or c.models_added
            or c.model_versions_added
            or c.model_changes
        )

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready summary."""
        from dataclasses import asdict

        out = asdict(self)
        out["ok"] = self.ok
        out["added_anything"] = self.added_anything
        return out


def list_run_ids(store: TrackingStore, project: str) -> list[str]:
    """Every run id of ``project``, oldest first."""
    ids: list[str] = []
    token: str | None = None
    while True:
        page = store.search_runs(
            project=project, order_by="created asc", limit=1000, page_token=token
        )
        ids.extend(r.run_id for r in page.runs)
        token = page.next_token
        if token is None:
            return ids


def _has_run(store: TrackingStore, run_id: str) -> bool:
    try:
        store.get_run(run_id)
    except NotFoundError:
        return False
    return True


@dataclass
class _RunCopied:
    """What copying one run did (merged into the report by the calling thread)."""

    added: bool
    fingerprint: str | None = None
    points: int = 0
    payload_bytes: int = 0
    files_added: int = 0
    files_present: int = 0
    file_bytes: int = 0


def _ordered(
    fn: Callable[[str], _T], items: list[str], workers: int = WORKERS
) -> Iterator[tuple[int, _T]]:
    """``fn`` over ``items`` in a few threads, results in order, at most ``2 * workers`` in
    flight (a store of many large runs is never held in memory at once)."""
    from collections import deque
    from concurrent.futures import Future, ThreadPoolExecutor

    with ThreadPoolExecutor(workers, thread_name_prefix="mltrail-copy") as pool:
        window: deque[Future[_T]] = deque()
        it = iter(items)
        for item in it:
            window.append(pool.submit(fn, item))
            if len(window) >= 2 * workers:
                break
        done = 0
        while window:
            result = window.popleft().result()
            done += 1
            for item in it:
                window.append(pool.submit(fn, item))
                break
            yield done, result


def _copy_files(src: Endpoint, dst: Endpoint, run_id: str, out: _RunCopied) -> None:
    if src.files is None or dst.files is None:
        return
    have = {(f.path, f.digest) for f in dst.files.list(run_id)}
    for record in src.files.list(run_id):
        if (record.path, record.digest) in have:
            out.files_present += 1
            continue
        data = src.files.read(run_id, record)
        dst.files.put(run_id, record.path, data)
        out.files_added += 1
        out.file_bytes += len(data)


def _copy_one(src: Endpoint, dst: Endpoint, run_id: str) -> _RunCopied:
    if _has_run(dst.store, run_id):
        out = _RunCopied(added=False)
    else:
        data = read_run(src.store, run_id)
        dst.store.apply_batch(run_batch(data))
        fingerprint = run_fingerprint(data, file_rows(src.files, run_id))
        out = _RunCopied(True, fingerprint, data.points, data.payload_bytes)
    _copy_files(src, dst, run_id, out)
    return out


def _copy_runs(
    src: Endpoint,
    dst: Endpoint,
    run_ids: list[str],
    report: CopyReport,
    progress: Callable[[str, int, int], None],
) -> dict[str, str]:
    """Copy the runs (a few at once); the source fingerprint of each one copied now."""
    fingerprints: dict[str, str] = {}
    for done, got in _ordered(lambda run_id: _copy_one(src, dst, run_id), run_ids):
        run_id = run_ids[done - 1]
        if got.added:
            assert got.fingerprint is not None
            fingerprints[run_id] = got.fingerprint
            report.runs_added += 1
        else:
            report.runs_present += 1
        report.points += got.points
        report.payload_bytes += got.payload_bytes
        report.files_added += got.files_added
        report.files_present += got.files_present
        report.file_bytes += got.file_bytes
        progress("runs", done, len(run_ids))
    return fingerprints


def _copy_catalog(
    src: Endpoint,
    dst: Endpoint,
    run_ids: list[str],
    report: CopyReport,
    progress: Callable[[str, int, int], None],
) -> None:
    from mltrail.store.optional import HasArtifacts, HasModelRegistry

    if isinstance(src.store, HasArtifacts) and isinstance(dst.store, HasArtifacts):
        sa, da = src.store.artifacts(), dst.store.artifacts()
        total = sum(len(sa.list_artifacts(p)) for p in report.projects)
        done = [0]

        def tick() -> None:
            done[0] += 1
            progress("artifacts", done[0], total)

        copy_artifacts(sa, da, src.objects, dst.objects, report.projects, report.catalog, tick)
        copy_inputs(sa, da, run_ids, report.catalog)
    if isinstance(src.store, HasModelRegistry) and isinstance(dst.store, HasModelRegistry):
        copy_registry(
            src.store.model_registry(), dst.store.model_registry(), report.projects, report.catalog
        )


def _verify(
    src: Endpoint,
    dst: Endpoint,
    run_ids: list[str],
    known: dict[str, str],
    report: CopyReport,
    progress: Callable[[str, int, int], None],
) -> None:
    from mltrail.store.optional import HasArtifacts, HasModelRegistry

    def compare(run_id: str) -> str | None:
        want = known.get(run_id)
        if want is None:
            want = run_fingerprint(read_run(src.store, run_id), file_rows(src.files, run_id))
        try:
            got = run_fingerprint(read_run(dst.store, run_id), file_rows(dst.files, run_id))
        except NotFoundError:
            return f"run {run_id} is missing from the destination"
        return None if got == want else f"run {run_id} differs between the two stores"

    for done, problem in _ordered(compare, run_ids):
        if problem is not None:
            report.mismatches.append(problem)
        progress("verify", done, len(run_ids))
    for project in report.projects:
        have = len(list_run_ids(dst.store, project))
        want_n = len(list_run_ids(src.store, project))
        if have < want_n:
            report.mismatches.append(f"project {project}: {have} runs copied of {want_n}")

    def parts(end: Endpoint) -> tuple[object, object]:
        arts = end.store.artifacts() if isinstance(end.store, HasArtifacts) else None
        reg = end.store.model_registry() if isinstance(end.store, HasModelRegistry) else None
        return arts, reg

    (sa, sr), (da, dr) = parts(src), parts(dst)
    if sa is not None and da is not None:
        want_c = catalog_fingerprint(sa, sr if dr is not None else None, report.projects)  # type: ignore[arg-type]
        got_c = catalog_fingerprint(da, dr if sr is not None else None, report.projects)  # type: ignore[arg-type]
        for project in report.projects:
            if want_c[project] != got_c[project]:
                report.mismatches.append(f"project {project}: artifacts or models differ")
        if dst.objects is not None and src.objects is not None:
            versions = [
                v
                for p in report.projects
                for a in da.list_artifacts(p)  # type: ignore[attr-defined]
                for v in da.list_versions(p, a.name)  # type: ignore[attr-defined]
            ]
            wanted = object_set(dst.objects, versions)
            missing = wanted - dst.objects.exists_many(wanted)
            for digest in sorted(missing)[:20]:
                report.mismatches.append(f"object {digest} is missing from the destination")


def copy_store(
    src: Endpoint,
    dst: Endpoint,
    *,
    project: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> CopyReport:
    """Copy every run of ``src`` (of ``project``) with its files, artifacts, lineage and
    models into ``dst``, idempotently, then verify the result (see the module docstring).

    Raises:
        NotFoundError: ``project`` is not a project of the source.
        StoreError: either store failed (what was copied so far stays; copy again).
    """
    tell = progress or (lambda phase, done, total: None)
    report = CopyReport(src.display, dst.display)
    names = [p.name for p in src.store.list_projects()]
    if project is not None and project not in names:
        raise NotFoundError(f"project {project!r} is not in the source store {src.display}")
    report.projects = [project] if project is not None else names
    started = time.perf_counter()
    run_ids = [r for p in report.projects for r in list_run_ids(src.store, p)]
    report.runs = len(run_ids)
    known = _copy_runs(src, dst, run_ids, report, tell)
    _copy_catalog(src, dst, run_ids, report, tell)
    report.copy_s = time.perf_counter() - started
    started = time.perf_counter()
    _verify(src, dst, run_ids, known, report, tell)
    report.verify_s = time.perf_counter() - started
    report.mismatches.extend(
        f"object {d} is missing from the source" for d in report.catalog.missing_objects
    )
    return report
