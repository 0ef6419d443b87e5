"""The real ``mlflow`` client's model registry calls against ``mltrail server``: registered
models, versions from a run's artifacts, aliases, search, download; mapped onto our
registry (the versions are artifact versions pinned by digest)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlfhelp import Mlf, point_mlflow, start

mlflow = pytest.importorskip("mlflow")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def mlf(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mlf]:
    yield from start(request.param, tmp_path_factory.mktemp("mlflow-registry"))


@pytest.fixture
def client(mlf: Mlf, monkeypatch: pytest.MonkeyPatch) -> Any:
    point_mlflow(monkeypatch, mlf)
    return mlf.client()


def _logged_model(tmp: Path, weights: bytes) -> str:
    """A run with a model folder (an MLmodel file and weights) among its artifacts."""
    folder = tmp / f"model-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    (folder / "MLmodel").write_text("artifact_path: model\nflavors: {}\n")
    (folder / "weights.bin").write_bytes(weights)
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(folder), "model")
    return str(run.info.run_id)


def test_register_alias_search_download(mlf: Mlf, client: Any, tmp_path: Path) -> None:
    from mlflow.exceptions import MlflowException

    name = f"clf-{uuid.uuid4().hex[:6]}"
    mlflow.set_experiment(f"reg-{uuid.uuid4().hex[:6]}")
    run1 = _logged_model(tmp_path, b"one")
    run2 = _logged_model(tmp_path, b"two")
    v1 = mlflow.register_model(f"runs:/{run1}/model", name)
    client.create_registered_model(f"{name}-other", description="x")
    with pytest.raises(MlflowException) as err:
        client.create_registered_model(name)
    assert err.value.error_code == "RESOURCE_ALREADY_EXISTS"
    v2 = client.create_model_version(name, f"runs:/{run2}/model", run_id=run2, tags={"k": "v"})
    assert (v1.version, v2.version) == ("1", "2")
    assert v2.run_id == run2 and v2.tags == {"k": "v"} and v2.status == "READY"

    client.set_registered_model_alias(name, "champion", "1")
    assert client.get_model_version_by_alias(name, "champion").version == "1"
    model = client.get_registered_model(name)
    assert model.aliases == {"champion": "1"}
    assert [v.version for v in model.latest_versions] == ["2"]
    client.update_registered_model(name, description="the classifier")
    client.set_registered_model_tag(name, "team", "vision")
    model = client.get_registered_model(name)
    assert model.description == "the classifier" and model.tags == {"team": "vision"}
    client.delete_registered_model_tag(name, "team")
    assert client.get_registered_model(name).tags == {}

    found = client.search_registered_models(filter_string=f"name LIKE '{name}%'")
    assert sorted(m.name for m in found) == [name, f"{name}-other"]
    versions = client.search_model_versions(f"name = '{name}'")
    assert sorted(v.version for v in versions) == ["1", "2"]
    assert [v.version for v in client.search_model_versions(f"run_id = '{run2}'")] == ["2"]

    out = Path(
        mlflow.artifacts.download_artifacts(
            f"models:/{name}@champion", dst_path=str(tmp_path / "dl")
        )
    )
    assert (out / "weights.bin").read_bytes() == b"one"
    out = Path(
        mlflow.artifacts.download_artifacts(f"models:/{name}/2", dst_path=str(tmp_path / "dl2"))
    )
    assert (out / "weights.bin").read_bytes() == b"two"

    # our registry holds the same: versions pinned to artifact versions by digest
    ours = mlf.store.model_registry().list_versions("default", name)
    assert [v.version for v in ours] == [1, 2] and ours[0].aliases == ("champion",)
    assert ours[0].digest != ours[1].digest and ours[0].kind == "tree"

    client.delete_registered_model_alias(name, "champion")
    with pytest.raises(MlflowException) as err:
        client.get_model_version_by_alias(name, "champion")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    client.delete_model_version(name, "1")
    with pytest.raises(MlflowException) as err:
        client.get_model_version(name, "1")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    client.delete_registered_model(f"{name}-other")
    with pytest.raises(MlflowException) as err:
        client.get_registered_model(f"{name}-other")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_bad_registry_input_is_refused(client: Any, tmp_path: Path) -> None:
    from mlflow.exceptions import MlflowException

    name = f"bad-{uuid.uuid4().hex[:6]}"
    client.create_registered_model(name)
    mlflow.set_experiment(f"reg-{uuid.uuid4().hex[:6]}")
    with mlflow.start_run() as run:
        pass
    for call in (
        lambda: client.create_model_version(name, f"runs:/{run.info.run_id}/nothing-here"),
        lambda: client.create_model_version(name, "s3://bucket/model"),
        lambda: client.set_registered_model_alias(name, "a", "7"),
        lambda: client.get_registered_model("no-such-model"),
    ):
        with pytest.raises(MlflowException) as err:
            call()
        assert err.value.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")
    assert client.get_registered_model(name).latest_versions == []
