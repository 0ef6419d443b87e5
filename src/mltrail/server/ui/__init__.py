"""The web UI: server-rendered pages, our own JS, plotly.js from the installed package.

``install_ui(app)`` adds the UI's routes and static files to the app built by
:func:`mltrail.server.app.create_app`:

- HTML pages (``/``, ``/p/{project}``, ``/runs/{id}``, ``/compare``, ``/diff``, ``/login``,
  the registry's ``/m/{project}`` and ``/model``);
  none of them is in the OpenAPI spec;
- ``/ui/static/...``: our CSS and JS (no third-party code is copied into the repository);
- ``/ui/plotly-<version>.min.js``: ``plotly.min.js`` read from the installed ``plotly``
  package, cacheable forever (the version is in the URL), gzip-encoded when accepted;
- ``/api/v1/ui/...``: the few JSON reads the UI needs beyond the REST API.

The pages use no inline script or style, so the server's strict Content-Security-Policy
(``script-src 'self'; style-src 'self'``) holds on every page.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["STATIC_DIR", "install_ui", "login_page_html"]

STATIC_DIR = Path(__file__).parent / "static"


def install_ui(app: FastAPI) -> None:
    """Add the UI's pages, its JSON reads and its static files to ``app``."""
    from starlette.staticfiles import StaticFiles

    from mltrail.server.ui import (
        assets,
        data,
        models_pages,
        pages,
        sweeps_pages,
        workspace_api,
    )

    app.include_router(assets.router)
    app.include_router(data.router)
    app.include_router(workspace_api.router)
    app.include_router(pages.router)
    app.include_router(models_pages.router)
    app.include_router(sweeps_pages.router)
    app.mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="ui-static")


def login_page_html(error: str | None = None, next_path: str = "/") -> str:
    """The UI's login page as HTML, for ``SecurityMiddleware(login_page=...)``.

    It links the app's stylesheet (public: the middleware serves ``/ui/static/ui.css``
    without a token) and no script; after logging in the browser goes to ``next_path``.
    """
    from mltrail import __version__
    from mltrail.server.ui._render import environment
    from mltrail.server.ui.pages import _safe_next

    return (
        environment()
        .get_template("login.html")
        .render(version=__version__, login_enabled=False, error=error, next=_safe_next(next_path))
    )
