"""The UI's model registry pages: a project's registered models, and one model (versions,
aliases, the history timeline, the card rendered, links to source runs and their lineage).

``/m/{project}`` lists models; ``/model?project=P&name=N[&version=K]`` shows one (the card of
version K, default the latest). A project the principal may not see answers 404 like a
missing one, before anything is read.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from mltrail.errors import NotFoundError
from mltrail.server.ui import _access
from mltrail.server.ui.pages import _html_errors, render_page

if TYPE_CHECKING:
    from fastapi.responses import Response

    from mltrail.registry.base import ModelRegistry
    from mltrail.registry.records import HistoryEvent, ModelVersion

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


def _reg(request: Request) -> ModelRegistry:
    from mltrail.store.optional import HasModelRegistry

    store = request.app.state.store
    if not isinstance(store, HasModelRegistry):
        raise NotFoundError("this store keeps no model registry")
    return store.model_registry()


def _sections(version: ModelVersion) -> list[dict[str, Any]]:
    """The card's sections in the paper's order: title, text or rows, or None if empty."""
    from mltrail.registry.cards import SECTIONS

    out = []
    for key, title in SECTIONS.items():
        value = version.card.get(key)
        rows = None
        text = None
        if isinstance(value, list) and value and all(isinstance(x, dict) for x in value):
            cols = sorted({k for x in value for k in x})
            rows = {"cols": cols, "rows": [[x.get(c, "") for c in cols] for x in value]}
        elif isinstance(value, str):
            text = value
        elif value:
            text = json.dumps(value, indent=2, sort_keys=True, default=str)
        out.append({"key": key, "title": title, "text": text, "table": rows})
    return out


def _change(event: HistoryEvent) -> str:
    def short(x: Any) -> str:
        return "–" if x is None else json.dumps(x, sort_keys=True, default=str)

    return f"{short(event.before)} → {short(event.after)}"


@router.get("/m/{project:path}", response_class=HTMLResponse)
@_html_errors
def models_page(request: Request, project: str) -> Response:
    """The registered models of a project (archived ones marked)."""
    _access.check_project(request, project)
    found = _reg(request).list_models(project, include_archived=True)
    return render_page(request, "models.html", project=project, models=found)


@router.get("/model", response_class=HTMLResponse)
@_html_errors
def model_page(request: Request, project: str, name: str, version: int | None = None) -> Response:
    """One model: versions, aliases, history timeline and a version's card."""
    _access.check_project(request, project)
    reg = _reg(request)
    model = reg.get_model(project, name)
    versions = reg.list_versions(project, name)
    shown = None
    if versions:
        wanted = version if version is not None else versions[-1].version
        shown = next((v for v in versions if v.version == wanted), None)
        if shown is None:
            raise NotFoundError(f"model {name!r} has no version {wanted}")
    events = reg.history(project, name)
    return render_page(
        request,
        "model.html",
        model=model,
        versions=versions,
        shown=shown,
        sections=_sections(shown) if shown is not None else [],
        events=[(e, _change(e)) for e in reversed(events)],
    )
