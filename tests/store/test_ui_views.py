"""Saved UI views (``ui_views``, migration 0010) on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from mltrail.errors import InvalidArgumentError, NotFoundError
from mltrail.store.ui_views import MAX_SPEC_BYTES, HasUiViews
from mltrail.testing import make_batch


def _project(store: Any) -> str:
    name = f"views-{uuid.uuid4().hex[:8]}"
    store.apply_batch(make_batch(uuid.uuid4().hex, project=name, created_ms=1))
    return name


def test_save_list_replace_delete(store: Any) -> None:
    """A view is saved, listed by name, replaced in place, read back and deleted."""
    assert isinstance(store, HasUiViews)
    views, project = store.ui_views(), _project(store)
    other = _project(store)
    assert views.list_views(project) == []
    views.save_view(project, "b-view", '{"panels":[]}', "alice")
    first = views.save_view(project, "a-view", '{"panels":[1]}', "alice")
    views.save_view(other, "a-view", '{"other":true}', "bob")
    assert [v.name for v in views.list_views(project)] == ["a-view", "b-view"]
    again = views.save_view(project, " a-view ", '{"panels":[2]}', "bob")  # replaced in place
    assert again.name == "a-view" and again.updated_ms >= first.updated_ms
    got = views.get_view(project, "a-view")
    assert (got.spec, got.updated_by) == ('{"panels":[2]}', "bob")
    assert views.get_view(other, "a-view").spec == '{"other":true}'  # per project
    assert views.delete_view(project, "a-view") is True
    assert views.delete_view(project, "a-view") is False
    with pytest.raises(NotFoundError):
        views.get_view(project, "a-view")
    with pytest.raises(NotFoundError):
        views.list_views("no-such-project")


def test_limits_name_the_field(store: Any) -> None:
    """Bad names and oversized documents are refused, naming the field and the limit."""
    views, project = store.ui_views(), _project(store)
    for bad in ("", "   ", "a/b", "tab\there", "x" * 121):
        with pytest.raises(InvalidArgumentError, match="^name: "):
            views.save_view(project, bad, "{}", "alice")
    with pytest.raises(InvalidArgumentError, match=f"^spec: .*{MAX_SPEC_BYTES}"):
        views.save_view(project, "big", '"' + "y" * MAX_SPEC_BYTES + '"', "alice")
    assert views.list_views(project) == []
