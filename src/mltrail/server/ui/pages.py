"""The UI's HTML pages: projects, runs table, run, compare, diff, login.

Handlers are plain (sync) functions: FastAPI runs them in its thread pool, so a store read
never blocks the event loop. Every page is rendered by Jinja with autoescape on; errors
become an HTML error page with the error's HTTP status (never a traceback).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mltrail.errors import InvalidArgumentError, MltrailError
from mltrail.server.ui import _access, _run_view, data
from mltrail.server.ui._queries import project_keys, require_project
from mltrail.server.ui._render import environment
from mltrail.server.ui._table import PAGE_SIZE, build_table

if TYPE_CHECKING:
    from collections.abc import Callable

    from mltrail.store.base import TrackingStore

__all__ = ["COOKIE", "render_login", "render_page", "router"]

COOKIE = "mltrail_token"
#: runs on one compare page: every run of a table page (100) and more; each chart asks for
#: one downsampled series per run, and 200 ids keep the URL well under 16 KB
MAX_COMPARE = 200
_MAX_FORM_BYTES = 8192

router = APIRouter(include_in_schema=False)


def _store(request: Request) -> TrackingStore:
    """The store as the request's principal sees it: pages read nothing of a project the
    token may not see (its runs, prefixes and blobs do not exist there)."""
    from mltrail.server.auth import principal_of
    from mltrail.server.scoping import ScopedTrackingStore

    return ScopedTrackingStore(request.app.state.store, principal_of(request))


def render_page(request: Request, template: str, status_code: int = 200, **ctx: Any) -> Response:
    """Render ``template`` with ``ctx`` as an HTML response (no caching of private data)."""
    from mltrail import __version__

    html = (
        environment()
        .get_template(template)
        .render(version=__version__, login_enabled=_access.auth_enabled(request), **ctx)
    )
    headers = {"Cache-Control": "no-store"}
    return HTMLResponse(html, status_code=status_code, headers=headers)


def render_login(request: Request, status_code: int = 401, error: str | None = None) -> Response:
    """The login form (what an HTML page answers when the request has no valid token)."""
    target = request.url.path if request.method == "GET" else "/"
    if request.url.query and request.method == "GET":
        target += "?" + request.url.query
    return render_page(request, "login.html", status_code, error=error, next=_safe_next(target))


def _html_errors(fn: Callable[..., Response]) -> Callable[..., Response]:
    """Turn an :class:`MltrailError` raised by a page into an HTML error page."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            return fn(*args, **kwargs)
        except MltrailError as exc:
            request: Request = kwargs["request"]
            return render_page(
                request, "error.html", exc.http_status, status=exc.http_status, error=exc
            )

    return wrapper


def _safe_next(target: str) -> str:
    """A post-login redirect target on this site only (a path; never ``//host``)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


# -- pages -----------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
@_html_errors
def projects_page(request: Request) -> Response:
    """Every project with its run count."""
    projects = [p for p in _store(request).list_projects() if _access.can_see(request, p.name)]
    return render_page(request, "projects.html", projects=projects)


@router.get("/p/{project:path}", response_class=HTMLResponse)
@_html_errors
def runs_page(
    request: Request,
    project: str,
    filter: str = "",
    order_by: str = "",
    group: str = "",
    cols: Annotated[list[str] | None, Query()] = None,
) -> Response:
    """A project's runs: filter, sort, columns, grouping; the first page rendered here."""
    store = _store(request)
    _access.check_project(request, project)
    require_project(store, project)
    keys = project_keys(request.app.state.store, project)  # a project it may see
    view = build_table(
        store, project, keys, filter=filter, order_by=order_by, cols=cols or [], group=group
    )
    status = 400 if view.error else 200
    return render_page(
        request, "runs.html", status, view=view, page_size=PAGE_SIZE, max_compare=MAX_COMPARE
    )


@router.get("/runs/{run_id}", response_class=HTMLResponse)
@_html_errors
def run_page(request: Request, run_id: str) -> Response:
    """One run: overview, params, metrics charts, system metrics, code, environment, ..."""
    store = _store(request)
    full = store.resolve_run_id(run_id)
    if full != run_id:
        _access.check_project(request, store.get_run(full).project)
        return RedirectResponse(f"/runs/{full}", status_code=307)
    view = _run_view.build_run(store, full)
    _access.check_project(request, view.run.project)
    data.remember_run(full, view.run.project)  # the lazy chart panels' visibility check
    return render_page(request, "run.html", view=view)


def _run_ids(values: list[str]) -> list[str]:
    ids: list[str] = []
    for value in values:
        for part in value.split(","):
            if part.strip() and part.strip() not in ids:
                ids.append(part.strip())
    return ids


@router.get("/compare", response_class=HTMLResponse)
@_html_errors
def compare_page(request: Request, runs: Annotated[list[str] | None, Query()] = None) -> Response:
    """Runs side by side: overlaid charts per metric and a params table of differences."""
    ids = _run_ids(runs or [])
    if not 1 <= len(ids) <= MAX_COMPARE:
        raise InvalidArgumentError(f"runs: pick 1 to {MAX_COMPARE} runs, got {len(ids)}")
    store = _store(request)
    records = [store.get_run(store.resolve_run_id(i)) for i in ids]
    for r in records:
        _access.check_project(request, r.project)
    return render_page(request, "compare.html", view=_run_view.build_compare(records))


@router.get("/diff", response_class=HTMLResponse)
@_html_errors
def diff_page(
    request: Request,
    a: str = "",
    b: str = "",
    runs: Annotated[list[str] | None, Query()] = None,
) -> Response:
    """``mltrail diff A B`` as a page: what changed, kind by kind.

    ``?a=RUN&b=RUN``, or ``?runs=RUN&runs=RUN`` as the runs table's form sends it.
    """
    picked = _run_ids(runs or [])
    if not a and not b and len(picked) == 2:
        a, b = picked
    if not a or not b:
        raise InvalidArgumentError("a, b: both run ids are required (/diff?a=RUN&b=RUN)")
    store = _store(request)
    for rid in (a, b):
        _access.check_project(request, store.get_run(store.resolve_run_id(rid)).project)
    return render_page(request, "diff.html", diff=_run_view.build_diff(store, a, b))


# -- login -----------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> Response:
    """The login form: paste a token made by ``mltrail token create``."""
    return render_page(request, "login.html", error=None, next=_safe_next(next))


@router.post("/login")
async def login(request: Request) -> Response:
    """Set the ``mltrail_token`` cookie (HttpOnly, SameSite=Strict) and go to ``next``.

    The auth middleware lets this request through only with a valid token in the form.
    """
    body = await request.body()
    if len(body) > _MAX_FORM_BYTES:
        return render_login(request, 413, "the form is too large")
    form = parse_qs(body.decode("utf-8", "replace"), max_num_fields=8)
    token = (form.get("token") or [""])[0].strip()
    target = _safe_next((form.get("next") or ["/"])[0])
    response = RedirectResponse(target, status_code=303)
    if token:
        response.set_cookie(
            COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    """Forget the cookie and show the login form."""
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response
