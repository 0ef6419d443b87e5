"""The registry's UI pages in a real browser (Debian's Chromium, Playwright): a project's
models, one model's versions, aliases, card and history timeline, links to source runs;
user text (a reason holding a script) is shown, never run."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from uihelp import LiveServer, Watched, make_app, screenshot

import mltrail
from mltrail.store.registry import forget_open_stores

if TYPE_CHECKING:
    from playwright.sync_api import Page

XSS = "<script>alert('pwned')</script> ship it"


@pytest.fixture(scope="module")
def registry_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A store with model ``fraud``: v1 (production, carded), v2 (staging), a history."""
    root = tmp_path_factory.mktemp("ui-registry")
    store = str(root / "store")
    weights = root / "w.bin"
    with mltrail.init(
        project="shop",
        name="train",
        store=store,
        capture=False,
        console=False,
        system_metrics_s=0,
    ) as run:
        run.log({"val/auc": 0.93})
        weights.write_bytes(b"v1")
        mltrail.register_model("fraud", run=run, artifact=weights)
        weights.write_bytes(b"v2")
        mltrail.register_model("fraud", run=run, artifact=weights)
    mltrail.models.card("fraud", 1, store=store).update(
        intended_use="Flag card fraud for review", limitations="Trained on EU data only"
    )
    mltrail.set_alias("fraud", "production", 1, reason=XSS, store=store)
    mltrail.set_alias("fraud", "staging", 2, store=store)
    forget_open_stores()
    yield root, run.run_id
    forget_open_stores()


@pytest.fixture(scope="module")
def server(registry_root: tuple[Path, str]) -> Iterator[LiveServer]:
    """The app in ``mltrail ui`` mode over the registry store."""
    with LiveServer(make_app(registry_root[0])) as live:
        yield live


def _open_model(page: Page) -> None:
    page.goto("/p/shop")
    page.click("#models-link")
    page.wait_for_url(re.compile(r"/m/shop$"))
    row = page.locator("#models tr[data-model='fraud']")
    assert "production→v1" in row.inner_text() and "staging→v2" in row.inner_text()
    row.locator("a").click()
    page.wait_for_url(re.compile(r"/model\?project=shop&name=fraud$"))


def test_model_page_versions_aliases_card_history(
    watched: Watched, registry_root: tuple[Path, str], shots: Path
) -> None:
    """From the runs page to the model: versions, aliases, the latest card, the timeline."""
    page = watched.page
    _open_model(page)
    assert page.locator("#model-name").inner_text() == "fraud"
    assert page.locator("#versions-table tbody tr").count() == 2
    assert page.locator("#aliases li[data-alias='production']").inner_text() == "production → v1"
    actions = page.locator("#timeline li").evaluate_all("els => els.map(e => e.dataset.action)")
    assert actions == [
        "alias_set",
        "alias_set",
        "card_updated",
        "version_created",
        "version_created",
    ]
    # the latest version is shown first: its card is empty
    assert "Model card: v2" in page.locator("#card h2").inner_text()
    assert page.locator("#card [data-section='intended_use'] .empty").count() == 1
    screenshot(page, shots, "model")


def test_card_and_source_run_links(watched: Watched, registry_root: tuple[Path, str]) -> None:
    """A version's link shows its card (run facts included); the run link opens the run."""
    page = watched.page
    _open_model(page)
    page.click("#aliases li[data-alias='production'] a")
    page.wait_for_url(re.compile(r"version=1$"))
    card = page.locator("#card")
    assert (
        "Flag card fraud for review" in card.locator("[data-section='intended_use']").inner_text()
    )
    assert "val/auc" in card.locator("[data-section='evaluation_results']").inner_text()
    assert "Trained on EU data only" in card.locator("[data-section='limitations']").inner_text()
    run_id = registry_root[1]
    page.locator("#versions-table tr[data-version='1'] a.run-link").click()
    page.wait_for_url(re.compile(rf"/runs/{run_id}$"))


def test_reason_with_markup_is_text(watched: Watched) -> None:
    """A reason holding a script is displayed as text; no dialog opens (the fixture checks)."""
    page = watched.page
    page.goto("/model?project=shop&name=fraud")
    reason = page.locator("#timeline li[data-action='alias_set'] q.reason").first
    assert reason.inner_text() == XSS


def test_unknown_model_and_version_are_404_pages(watched: Watched) -> None:
    """Missing models and versions answer an HTML error page with 404."""
    page = watched.page
    for url in (
        "/model?project=shop&name=nope",
        "/model?project=shop&name=fraud&version=9",
        "/model?project=other&name=fraud",
    ):
        response = page.goto(url)
        assert response is not None and response.status == 404, url
