"""Saved workspace views: named UI layouts kept per project (``HasUiViews`` stores).

A view is the web UI's workspace state (its panels, hidden runs, the runs table's filter,
order and columns) as one JSON document under a name, per project. The UI writes and reads
them through ``/api/v1/ui/projects/{project}/views``; the SQL stores keep them in the
``ui_views`` table (migration 0010). Plain data here: no SQL, nothing heavy to import.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from mltrail.errors import InvalidArgumentError

__all__ = [
    "MAX_SPEC_BYTES",
    "MAX_VIEWS",
    "HasUiViews",
    "SavedView",
    "UiViews",
    "check_view_name",
]

#: the largest view document kept (a layout of a few dozen panels is a few KB)
MAX_SPEC_BYTES = 64 * 1024
#: views kept per project
MAX_VIEWS = 200
_NAME = re.compile(r"^[^\x00-\x1f\x7f/]{1,120}$")


@dataclass(frozen=True, slots=True)
class SavedView:
    """One named view of a project: its JSON document, when and by whom it was last saved."""

    project: str
    name: str
    spec: str
    updated_ms: int
    updated_by: str


def check_view_name(name: str) -> str:
    """``name`` stripped, or :class:`InvalidArgumentError` naming the field and the limit."""
    name = name.strip()
    if not _NAME.match(name):
        raise InvalidArgumentError(
            "name: a view name is 1 to 120 characters, no '/' and no control characters"
        )
    return name


@runtime_checkable
class UiViews(Protocol):
    """The saved views of a store's projects."""

    def list_views(self, project: str) -> list[SavedView]:
        """Every view of ``project``, by name."""
        ...

    def get_view(self, project: str, name: str) -> SavedView:
        """One view (``NotFoundError`` when missing)."""
        ...

    def save_view(self, project: str, name: str, spec: str, actor: str) -> SavedView:
        """Create or replace a view (``InvalidArgumentError`` past the limits)."""
        ...

    def delete_view(self, project: str, name: str) -> bool:
        """Remove a view; False when there was none."""
        ...


@runtime_checkable
class HasUiViews(Protocol):
    """A store that keeps saved UI views."""

    def ui_views(self) -> UiViews:
        """The store's saved views."""
        ...
