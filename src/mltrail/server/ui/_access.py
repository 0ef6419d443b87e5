"""What the request's principal allows the UI to show.

The security middleware (:mod:`mltrail.server.auth`) authenticates every request before a
page runs and attaches a :class:`~mltrail.server.auth.Principal` (the local admin in
``mltrail ui`` mode). Pages read the store directly, so they apply the rule the REST routes
apply: a token scoped to one project sees nothing of another, and a run of another project
answers 404 exactly like a missing one. A request with no principal is refused (deny by
default, should the middleware ever be missing).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mltrail.errors import NotFoundError

if TYPE_CHECKING:
    from fastapi import Request

__all__ = ["auth_enabled", "can_see", "check_project"]


def auth_enabled(request: Request) -> bool:
    """True when the server enforces tokens (``mltrail server``; not ``mltrail ui``)."""
    config = getattr(request.app.state, "config", None)
    return bool(getattr(config, "auth", True))


def can_see(request: Request, project: str) -> bool:
    """Whether the request's principal may see ``project``.

    Raises:
        AuthenticationError: no principal attached (the request was not authenticated).
    """
    from mltrail.server.auth import principal_of

    return principal_of(request).can_see(project)


def check_project(request: Request, project: str) -> None:
    """Raise :class:`NotFoundError` (404, like a missing record) for a project not visible."""
    if not can_see(request, project):
        raise NotFoundError("not found")
