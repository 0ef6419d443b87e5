"""One Optuna file per embedded store, however the store is named (folder or file URI):
`mltrail ui` names it by its file, the SDK by its folder, and both must find the sweep."""

from __future__ import annotations

from pathlib import Path

from mltrail.store.registry import resolve_location
from mltrail.sweeps.storage import optuna_storage_url


def test_folder_and_file_uri_name_the_same_optuna_file(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    by_folder = optuna_storage_url(resolve_location(str(folder)))
    by_file = optuna_storage_url(resolve_location(f"sqlite:///{folder / 'mltrail.db'}"))
    assert by_folder == by_file == f"sqlite:///{folder / 'optuna.db'}"
    other = optuna_storage_url(resolve_location(f"sqlite:///{tmp_path / 'team.db'}"))
    assert other == f"sqlite:///{tmp_path / 'team.optuna.db'}"


def test_a_sweep_stored_beside_a_file_uri_before_is_still_found(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    folder.mkdir()
    (folder / "mltrail.optuna.db").write_bytes(b"")  # where a file URI put it before
    got = optuna_storage_url(resolve_location(f"sqlite:///{folder / 'mltrail.db'}"))
    assert got == f"sqlite:///{folder / 'mltrail.optuna.db'}"
