"""The ModelRegistry contract as a pytest suite (see :mod:`mltrail.registry.base`).

Subclass :class:`ModelRegistryContract` and provide a ``store`` fixture yielding a fresh
tracking store with ``model_registry()`` and ``artifacts()``; a server-backed store must
already hold the objects ``fake_content(1..9)`` (it records versions only of objects it
holds). ``store_factory`` (optional) opens more clients of the same store for the races.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import pytest

from mltrail.artifacts.records import NewVersion
from mltrail.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    NotFoundError,
    VersionConflictError,
)
from mltrail.registry.records import ACTIONS, NewModelVersion
from mltrail.testing.artifacts import fake_digest
from mltrail.testing.contract import make_batch

if TYPE_CHECKING:
    from collections.abc import Callable

    from mltrail.registry.base import ModelRegistry

__all__ = ["RACERS", "ModelRegistryContract", "seed_artifacts"]

#: concurrent writers in the race tests
RACERS = 20


def seed_artifacts(store: Any, n: int = 3, run_id: str = "train1") -> None:
    """A run ``run_id`` of project ``proj`` that produced ``model:v1..vn``."""
    store.apply_batch(make_batch(run_id))
    arts = store.artifacts()
    for i in range(1, n + 1):
        arts.log_version(
            NewVersion(
                project="proj",
                name="model",
                type="model",
                digest=fake_digest(i),
                kind="file",
                size=10,
                file_count=1,
                run_id=run_id,
            )
        )


def _new(version: int = 1, name: str = "fraud", **kw: Any) -> NewModelVersion:
    return NewModelVersion(
        project="proj", name=name, artifact_name="model", artifact_version=version, **kw
    )


def _race(n: int, job: Callable[[int], Any]) -> list[Any]:
    """Run ``job(i)`` in ``n`` threads released together; results or exceptions, in order."""
    barrier = threading.Barrier(n)
    out: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            out[i] = job(i)
        except Exception as exc:  # noqa: BLE001 - collected for the assertions
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return out


class ModelRegistryContract:
    """Every ModelRegistry backend must pass these tests."""

    #: the identity a backend that authenticates callers records instead of ``actor``
    authenticated_actor: str | None = None

    @pytest.fixture
    def reg(self, store: Any) -> ModelRegistry:
        seed_artifacts(store)
        got: ModelRegistry = store.model_registry()
        return got

    @pytest.fixture
    def clients(self, store: Any, request: pytest.FixtureRequest) -> list[ModelRegistry]:
        """Registries for the racers: separate clients when the suite can open them."""
        try:
            factory = request.getfixturevalue("store_factory")
        except pytest.FixtureLookupError:
            return [store.model_registry()] * RACERS
        return [factory().model_registry() for _ in range(RACERS)]

    # -- versions ---------------------------------------------------------------------

    def test_register_numbers_versions_and_pins_digest(self, reg: ModelRegistry) -> None:
        """Versions count 1, 2, ...; each pins its artifact's digest and producing run."""
        v1 = reg.register_version(_new(1, signature={"inputs": ["x"]}, metadata={"f": 1}))
        v2 = reg.register_version(_new(2))
        v3 = reg.register_version(_new(1))
        assert [v1.version, v2.version, v3.version] == [1, 2, 3]
        assert v1.digest == fake_digest(1) and v1.artifact == "model:v1"
        assert v1.run_id == "train1" and v1.kind == "file" and v1.size == 10
        assert v1.signature == {"inputs": ["x"]} and v1.metadata == {"f": 1}
        assert reg.get_version("proj", "fraud", 2).digest == fake_digest(2)
        assert [v.version for v in reg.list_versions("proj", "fraud")] == [1, 2, 3]
        assert reg.get_version("proj", "fraud", 3).aliases == ("latest",)
        model = reg.get_model("proj", "fraud")
        assert (model.latest_version, model.version_count) == (3, 3)

    def test_unknown_artifact_or_run_refused(self, reg: ModelRegistry) -> None:
        """A version of a missing artifact version or run is refused, and nothing is made."""
        with pytest.raises(NotFoundError, match="model:v9"):
            reg.register_version(_new(9))
        with pytest.raises(NotFoundError, match="nope"):
            reg.register_version(_new(1, run_id="nope"))
        with pytest.raises(NotFoundError):
            reg.get_model("proj", "fraud")

    def test_bad_input_names_the_field(self, reg: ModelRegistry) -> None:
        """Bad names, aliases, reasons and versions name the field and the limit."""
        with pytest.raises(InvalidArgumentError, match="model name"):
            reg.register_version(_new(1, name="bad name"))
        reg.register_version(_new(1))
        with pytest.raises(InvalidArgumentError, match="model alias"):
            reg.set_alias("proj", "fraud", "latest", 1)
        with pytest.raises(InvalidArgumentError, match="model alias"):
            reg.set_alias("proj", "fraud", "3", 1)
        with pytest.raises(InvalidArgumentError, match="reason .*limit is 2000"):
            reg.set_alias("proj", "fraud", "prod", 1, reason="x" * 2001)
        with pytest.raises(InvalidArgumentError, match="model version"):
            reg.get_version("proj", "fraud", 0)
        with pytest.raises(NotFoundError, match="no version 7"):
            reg.get_version("proj", "fraud", 7)

    def test_create_update_archive_model(self, reg: ModelRegistry) -> None:
        """A model can be created empty, described, tagged, archived and restored."""
        m = reg.create_model("proj", "churn", description="d", owner="ann", tags={"team": "a"})
        assert (m.description, m.owner, m.tags, m.version_count) == ("d", "ann", {"team": "a"}, 0)
        with pytest.raises(AlreadyExistsError):
            reg.create_model("proj", "churn")
        m = reg.update_model("proj", "churn", description="better", tags={"team": "b"})
        assert (m.description, m.tags, m.owner) == ("better", {"team": "b"}, "ann")
        reg.set_model_archived("proj", "churn", True, reason="retired")
        assert [x.name for x in reg.list_models("proj")] == []
        assert [x.name for x in reg.list_models("proj", include_archived=True)] == ["churn"]
        reg.set_model_archived("proj", "churn", False)
        assert [x.name for x in reg.list_models()] == ["churn"]

    # -- aliases ------------------------------------------------------------------------

    def test_alias_set_move_resolve_remove(self, reg: ModelRegistry) -> None:
        """An alias points at one version, moves, resolves through models:/ and goes."""
        for i in (1, 2):
            reg.register_version(_new(i))
        assert reg.set_alias("proj", "fraud", "production", 1).aliases == ("production",)
        assert reg.resolve("models:/fraud@production").version == 1
        reg.set_alias("proj", "fraud", "production", 2, expected_version=1)
        assert reg.resolve("models:/proj/fraud@production").version == 2
        assert reg.resolve("models:/fraud").version == 2
        assert reg.resolve("models:/fraud/1").version == 1
        assert reg.get_model("proj", "fraud").aliases == {"production": 2}
        with pytest.raises(NotFoundError, match="no alias 'staging'"):
            reg.resolve("models:/fraud@staging")
        assert reg.remove_alias("proj", "fraud", "production") is True
        assert reg.remove_alias("proj", "fraud", "production") is False

    def test_expected_version_conflict_names_current(self, reg: ModelRegistry) -> None:
        """A move expecting the wrong version fails, names the current one, changes nothing."""
        for i in (1, 2, 3):
            reg.register_version(_new(i))
        reg.set_alias("proj", "fraud", "prod", 2)
        with pytest.raises(VersionConflictError, match="current version: 2"):
            reg.set_alias("proj", "fraud", "prod", 3, expected_version=1)
        with pytest.raises(VersionConflictError, match="current version: 2"):
            reg.set_alias("proj", "fraud", "prod", 3, expected_version=0)
        with pytest.raises(VersionConflictError, match="current version: none"):
            reg.set_alias("proj", "fraud", "staging", 3, expected_version=2)
        with pytest.raises(VersionConflictError):
            reg.remove_alias("proj", "fraud", "prod", expected_version=3)
        assert reg.resolve("models:/fraud@prod").version == 2
        assert reg.set_alias("proj", "fraud", "staging", 3, expected_version=0).version == 3

    def test_archived_version_cannot_be_aliased(self, reg: ModelRegistry) -> None:
        """An aliased version cannot be archived; an archived one cannot get an alias."""
        for i in (1, 2):
            reg.register_version(_new(i))
        reg.set_alias("proj", "fraud", "prod", 1)
        with pytest.raises(InvalidArgumentError, match="prod"):
            reg.set_version_archived("proj", "fraud", 1, True)
        assert reg.set_version_archived("proj", "fraud", 2, True).archived
        with pytest.raises(InvalidArgumentError, match="archived"):
            reg.set_alias("proj", "fraud", "prod", 2)
        assert not reg.set_version_archived("proj", "fraud", 2, False).archived

    # -- cards ------------------------------------------------------------------------------

    def test_card_revisions(self, reg: ModelRegistry) -> None:
        """Each card change is a new revision of the version's card; the same card is none."""
        reg.register_version(_new(1))
        v = reg.update_card("proj", "fraud", 1, {"intended_use": "fraud triage"})
        assert (v.card, v.card_revision) == ({"intended_use": "fraud triage"}, 1)
        same = reg.update_card("proj", "fraud", 1, {"intended_use": "fraud triage"})
        assert same.card_revision == 1
        v = reg.update_card("proj", "fraud", 1, {"intended_use": "triage", "limitations": "x"})
        assert v.card_revision == 2 and reg.get_version("proj", "fraud", 1).card["limitations"]
        with pytest.raises(InvalidArgumentError, match="model card .*limit is 262144"):
            reg.update_card("proj", "fraud", 1, {"x": "y" * 300_000})

    # -- history ------------------------------------------------------------------------

    def test_every_mutation_one_event(self, reg: ModelRegistry) -> None:
        """Each change appends exactly one event with before/after; no-ops append none."""
        steps: list[tuple[Callable[[], Any], str | None]] = [
            (lambda: reg.register_version(_new(1, reason="first")), "version_created"),
            (lambda: reg.register_version(_new(2)), "version_created"),
            (lambda: reg.set_alias("proj", "fraud", "prod", 1, reason="go"), "alias_set"),
            (lambda: reg.set_alias("proj", "fraud", "prod", 1), None),
            (lambda: reg.set_alias("proj", "fraud", "prod", 2, actor="bob"), "alias_moved"),
            (lambda: reg.update_card("proj", "fraud", 2, {"intended_use": "u"}), "card_updated"),
            (lambda: reg.update_card("proj", "fraud", 2, {"intended_use": "u"}), None),
            (lambda: reg.update_model("proj", "fraud", description="d"), "model_updated"),
            (lambda: reg.update_model("proj", "fraud", description="d"), None),
            (lambda: reg.set_version_archived("proj", "fraud", 1, True), "version_archived"),
            (lambda: reg.set_version_archived("proj", "fraud", 1, True), None),
            (lambda: reg.set_version_archived("proj", "fraud", 1, False), "version_restored"),
            (lambda: reg.remove_alias("proj", "fraud", "prod", reason="pull"), "alias_removed"),
            (lambda: reg.remove_alias("proj", "fraud", "prod"), None),
            (lambda: reg.set_model_archived("proj", "fraud", True), "model_archived"),
            (lambda: reg.set_model_archived("proj", "fraud", False), "model_restored"),
        ]
        expected: list[str] = []
        for call, action in steps:
            call()
            if action is not None:
                expected.append(action)
            got = reg.history("proj", "fraud")
            assert [e.action for e in got] == expected
        assert [e.seq for e in got] == list(range(1, len(expected) + 1))
        assert set(expected) <= set(ACTIONS)
        assert got[0].reason == "first" and got[0].after["model_created"] is True
        assert got[0].after["digest"] == fake_digest(1) and got[0].version == 1
        moved = got[3]
        assert (moved.before, moved.after["version"], moved.alias) == ({"version": 1}, 2, "prod")
        removed = next(e for e in got if e.action == "alias_removed")
        assert (removed.before, removed.after, removed.reason) == ({"version": 2}, None, "pull")
        card = next(e for e in got if e.action == "card_updated")
        assert card.before == {"intended_use": None} and card.after["intended_use"] == "u"
        assert moved.actor == (self.authenticated_actor or "bob")
        stamps = [e.created_ms for e in got]
        assert stamps == sorted(stamps)
        assert len(reg.history("proj", "fraud", limit=2)) == 2

    def test_failed_changes_write_no_event(self, reg: ModelRegistry) -> None:
        """A refused change (conflict, bad input, missing version) leaves no event."""
        reg.register_version(_new(1))
        reg.set_alias("proj", "fraud", "prod", 1)
        before = len(reg.history("proj", "fraud"))
        bads: list[Callable[[], Any]] = [
            lambda: reg.set_alias("proj", "fraud", "prod", 1, expected_version=5),
            lambda: reg.set_alias("proj", "fraud", "prod", 9),
            lambda: reg.update_card("proj", "fraud", 9, {"a": "b"}),
        ]
        for bad in bads:
            with pytest.raises((VersionConflictError, NotFoundError)):
                bad()
        assert len(reg.history("proj", "fraud")) == before

    def test_override_recorded(self, reg: ModelRegistry) -> None:
        """An override given with a move is in that move's event."""
        reg.register_version(_new(1))
        reg.set_alias(
            "proj", "fraud", "production", 1, reason="hotfix", override={"unmet": ["card"]}
        )
        event = reg.history("proj", "fraud")[-1]
        assert event.after == {"version": 1, "override": {"unmet": ["card"]}}
        assert event.reason == "hotfix"

    # -- races --------------------------------------------------------------------------

    def test_concurrent_registrations_unique_gapless(
        self, reg: ModelRegistry, clients: list[ModelRegistry]
    ) -> None:
        """20 concurrent registrations of one new model get versions 1..20, each once."""
        got = _race(RACERS, lambda i: clients[i].register_version(_new(1 + i % 3)))
        errors = [g for g in got if isinstance(g, Exception)]
        assert not errors, errors[:3]
        assert sorted(v.version for v in got) == list(range(1, RACERS + 1))
        history = reg.history("proj", "fraud")
        assert [e.seq for e in history] == list(range(1, RACERS + 1))
        assert sum(1 for e in history if e.after.get("model_created")) == 1

    def test_concurrent_alias_moves_one_wins(
        self, reg: ModelRegistry, clients: list[ModelRegistry]
    ) -> None:
        """20 moves expecting v1 at once: exactly one wins, the others conflict naming it."""
        for i in (1, 2, 3):
            reg.register_version(_new(i))
        reg.set_alias("proj", "fraud", "production", 1)
        got = _race(
            RACERS,
            lambda i: clients[i].set_alias(
                "proj", "fraud", "production", 2 + i % 2, expected_version=1
            ),
        )
        wins = [g for g in got if not isinstance(g, Exception)]
        conflicts = [g for g in got if isinstance(g, VersionConflictError)]
        assert len(wins) == 1 and len(conflicts) == RACERS - 1, got
        winner = wins[0].version
        assert all(f"current version: {winner}" in str(c) for c in conflicts)
        assert reg.resolve("models:/fraud@production").version == winner
        moves = [e for e in reg.history("proj", "fraud") if e.alias == "production"]
        assert [e.action for e in moves] == ["alias_set", "alias_moved"]
