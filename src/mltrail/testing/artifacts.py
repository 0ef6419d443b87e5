"""The ArtifactStore contract as a pytest suite (see :mod:`mltrail.artifacts.base`).

Subclass :class:`ArtifactStoreContract` and provide a ``store`` fixture yielding a fresh
tracking store whose ``artifacts()`` returns its :class:`~mltrail.artifacts.records.ArtifactStore`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from mltrail.artifacts.records import NewVersion, version_node_id
from mltrail.errors import AmbiguousIdError, InvalidArgumentError, NotFoundError
from mltrail.testing.contract import make_batch

if TYPE_CHECKING:
    from mltrail.artifacts.base import ArtifactStore
    from mltrail.artifacts.records import ArtifactVersion

__all__ = ["ArtifactStoreContract", "fake_content", "fake_digest"]


def fake_content(n: int | str) -> bytes:
    """The bytes of the test object ``n`` (a server must hold them to record a version)."""
    return f"mltrail test object {n}".encode()


def fake_digest(n: int | str) -> str:
    """The blake3 digest of :func:`fake_content` (``n``): a real digest, so a server can hold it.

    A server records a ``file``/``tree`` version only for objects it holds; a suite run
    through one uploads ``fake_content(n)`` first.
    """
    from mltrail.objects.digest import hash_bytes

    return hash_bytes(fake_content(n), "blake3")


def _new(name: str, content: int | str, **kw: Any) -> NewVersion:
    fields: dict[str, Any] = {
        "project": "proj",
        "name": name,
        "type": "dataset",
        "digest": fake_digest(content),
        "kind": "file",
        "size": 10,
        "file_count": 1,
    }
    fields.update(kw)
    return NewVersion(**fields)


class ArtifactStoreContract:
    """Every ArtifactStore backend must pass these tests."""

    @pytest.fixture
    def arts(self, store: Any) -> ArtifactStore:
        got: ArtifactStore = store.artifacts()
        return got

    # -- versions ---------------------------------------------------------------------

    def test_same_content_same_version(self, arts: ArtifactStore) -> None:
        """Logging a digest twice returns the first version unchanged."""
        v1 = arts.log_version(_new("data", 1, metadata={"rows": 3}))
        again = arts.log_version(_new("data", 1, metadata={"rows": 99}))
        assert (v1.version, again.version) == (1, 1)
        assert again.metadata == {"rows": 3} and again.created_ms == v1.created_ms
        assert [v.version for v in arts.list_versions("proj", "data")] == [1]

    def test_changed_content_new_version_latest_moves(self, arts: ArtifactStore) -> None:
        """New content is max+1 and ``latest`` follows it; old content keeps its number."""
        assert arts.log_version(_new("data", 1)).aliases == ("latest",)
        v2 = arts.log_version(_new("data", 2))
        assert v2.version == 2 and v2.aliases == ("latest",)
        assert arts.log_version(_new("data", 1)).version == 1
        assert arts.resolve("data").version == 2
        assert arts.resolve("data:latest").version == 2
        assert arts.resolve("data:v1").aliases == ()
        assert arts.log_version(_new("data", 3)).version == 3

    def test_aliases_move(self, arts: ArtifactStore) -> None:
        """An alias points at one version; logging or setting it again moves it."""
        arts.log_version(_new("model", 1, type="model", aliases=("best", "prod")))
        arts.log_version(_new("model", 2, type="model", aliases=("best",)))
        assert arts.resolve("model:best").version == 2
        assert arts.resolve("model:prod").version == 1
        assert arts.resolve("model:v1").aliases == ("prod",)
        assert arts.resolve("model:v2").aliases == ("best", "latest")
        moved = arts.set_alias("proj", "model", "best", 1)
        assert moved.aliases == ("best", "prod")
        assert arts.resolve("model:best").version == 1
        assert arts.remove_alias("proj", "model", "prod")
        assert not arts.remove_alias("proj", "model", "prod")
        with pytest.raises(NotFoundError, match="no alias 'prod'"):
            arts.resolve("model:prod")
        with pytest.raises(NotFoundError):
            arts.set_alias("proj", "model", "best", 7)
        with pytest.raises(InvalidArgumentError, match="implicit"):
            arts.set_alias("proj", "model", "latest", 1)

    def test_type_is_fixed(self, arts: ArtifactStore) -> None:
        """A name keeps the type it was created with."""
        arts.log_version(_new("thing", 1, type="dataset"))
        with pytest.raises(InvalidArgumentError, match="is a 'dataset'"):
            arts.log_version(_new("thing", 2, type="model"))

    def test_record_fields_round_trip(self, store: Any, arts: ArtifactStore) -> None:
        """Every field of a version reads back as logged."""
        store.apply_batch(make_batch("r1"))
        got = arts.log_version(
            _new(
                "ref",
                5,
                kind="reference",
                size=2**40,
                file_count=12,
                uri="s3://bucket/key",
                metadata={"nested": {"a": [1, 2]}, "nan": float("nan"), "é": "ü"},
                source={"etag": '"abc"'},
                run_id="r1",
                created_ms=1234,
            )
        )
        assert (got.project, got.name, got.type, got.kind) == (
            "proj",
            "ref",
            "dataset",
            "reference",
        )
        assert (got.size, got.file_count, got.uri) == (2**40, 12, "s3://bucket/key")
        assert got.metadata == {"nested": {"a": [1, 2]}, "nan": "NaN", "é": "ü"}
        assert got.source == {"etag": '"abc"'}
        assert (got.run_id, got.created_ms, got.digest) == ("r1", 1234, fake_digest(5))
        assert arts.resolve(got.digest) == got

    def test_unknown_run_is_not_found(self, arts: ArtifactStore) -> None:
        """A version cannot name a run that does not exist."""
        with pytest.raises(NotFoundError, match="nope"):
            arts.log_version(_new("data", 1, run_id="nope"))
        assert arts.list_artifacts() == []

    # -- resolution -------------------------------------------------------------------

    def test_resolve_forms_and_errors(self, arts: ArtifactStore) -> None:
        """name, name:vN, name:alias, digest, project/name; clear errors otherwise."""
        arts.log_version(_new("data", 1, aliases=("gold",)))
        arts.log_version(_new("data", 2))
        assert arts.resolve("data:gold").version == 1
        assert arts.resolve("proj/data:v2").version == 2
        assert arts.resolve(fake_digest(2)).version == 2
        assert arts.resolve(fake_digest(1), project="proj").version == 1
        with pytest.raises(NotFoundError, match="no version v9"):
            arts.resolve("data:v9")
        with pytest.raises(NotFoundError, match="no artifact named 'other'"):
            arts.resolve("other")
        with pytest.raises(NotFoundError, match="in project 'elsewhere'"):
            arts.resolve("data", project="elsewhere")
        with pytest.raises(NotFoundError):
            arts.resolve(fake_digest(42))
        with pytest.raises(InvalidArgumentError):
            arts.resolve("data:v0")
        with pytest.raises(InvalidArgumentError):
            arts.resolve("da ta")

    def test_same_name_in_two_projects_is_ambiguous(self, arts: ArtifactStore) -> None:
        """Without a project, a name used by two projects is ambiguous; with one, it is not."""
        arts.log_version(_new("data", 1, project="a"))
        arts.log_version(_new("data", 2, project="b"))
        with pytest.raises(AmbiguousIdError, match="a/data, b/data"):
            arts.resolve("data")
        assert arts.resolve("b/data").digest == fake_digest(2)
        assert arts.resolve("data", project="a").digest == fake_digest(1)

    def test_same_digest_under_two_names(self, arts: ArtifactStore) -> None:
        """Each name gets its own version; the bare digest is then ambiguous."""
        arts.log_version(_new("x", 1))
        arts.log_version(_new("y", 1))
        with pytest.raises(AmbiguousIdError, match="proj/x:v1"):
            arts.resolve(fake_digest(1))

    def test_list_artifacts(self, arts: ArtifactStore) -> None:
        """Artifacts by project and name, with latest version, count and aliases."""
        arts.log_version(_new("zeta", 1, project="p2"))
        arts.log_version(_new("alpha", 1, project="p1"))
        arts.log_version(_new("alpha", 2, project="p1", aliases=("best",)))
        listed = arts.list_artifacts()
        assert [(a.project, a.name, a.latest_version, a.version_count) for a in listed] == [
            ("p1", "alpha", 2, 2),
            ("p2", "zeta", 1, 1),
        ]
        assert listed[0].aliases == {"best": 2, "latest": 2}
        assert [a.name for a in arts.list_artifacts("p2")] == ["zeta"]
        with pytest.raises(NotFoundError):
            arts.list_versions("p1", "zeta")

    # -- lineage ----------------------------------------------------------------------

    def _chain(self, store: Any, arts: ArtifactStore) -> dict[str, ArtifactVersion]:
        """data-run → raw:v1 → train-run → model:v1 → eval-run → report:v1."""
        for rid in ("prep", "train", "eval"):
            store.apply_batch(make_batch(rid))
        raw = arts.log_version(_new("raw", 1, run_id="prep"))
        arts.record_input("train", raw)
        model = arts.log_version(_new("model", 2, type="model", run_id="train"))
        arts.record_input("eval", model)
        report = arts.log_version(_new("report", 3, type="report", run_id="eval"))
        return {"raw": raw, "model": model, "report": report}

    def test_inputs_outputs_consumers(self, store: Any, arts: ArtifactStore) -> None:
        """Outputs by producing run, inputs recorded once, consumers of a version."""
        v = self._chain(store, arts)
        assert [x.name for x in arts.run_outputs("train")] == ["model"]
        assert [x.name for x in arts.run_inputs("train")] == ["raw"]
        arts.record_input("train", v["raw"])  # idempotent
        assert [x.name for x in arts.run_inputs("train")] == ["raw"]
        assert arts.consumers(v["model"]) == ["eval"]
        assert arts.run_inputs("prep") == []
        with pytest.raises(NotFoundError):
            arts.record_input("ghost", v["raw"])

    def test_lineage_upstream_downstream(self, store: Any, arts: ArtifactStore) -> None:
        """Upstream of eval reaches prep; downstream of raw reaches the report."""
        v = self._chain(store, arts)
        up = arts.lineage(run_id="eval", direction="upstream")
        ids = {n.id for n in up.nodes}
        assert ids == {
            "run:eval",
            "run:train",
            "run:prep",
            version_node_id(v["model"]),
            version_node_id(v["raw"]),
        }
        assert {(e.source, e.target, e.relation) for e in up.edges} == {
            ("run:prep", version_node_id(v["raw"]), "produced"),
            (version_node_id(v["raw"]), "run:train", "used"),
            ("run:train", version_node_id(v["model"]), "produced"),
            (version_node_id(v["model"]), "run:eval", "used"),
        }
        down = arts.lineage(version=v["raw"], direction="downstream")
        assert {n.id for n in down.nodes} == {
            version_node_id(v["raw"]),
            "run:train",
            version_node_id(v["model"]),
            "run:eval",
            version_node_id(v["report"]),
        }
        assert down.root == version_node_id(v["raw"])
        near = arts.lineage(run_id="train", direction="both", max_depth=1)
        assert {n.id for n in near.nodes} == {
            "run:train",
            version_node_id(v["raw"]),
            version_node_id(v["model"]),
        }
        whole = arts.lineage(version=v["model"])
        assert len(whole.nodes) == 6 and len(whole.edges) == 5
        assert whole.to_dict()["nodes"][0]["id"] == version_node_id(v["model"])
        with pytest.raises(NotFoundError):
            arts.lineage(run_id="ghost")
        with pytest.raises(InvalidArgumentError):
            arts.lineage()
