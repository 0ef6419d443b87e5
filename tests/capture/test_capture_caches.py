"""Per-process caches of the capture: a change is never missed.

The listing of data pointer files is reused while the working tree's stamp is unchanged, and
the installed packages while no folder on sys.path has changed; each must see a change made
between two runs of the same process.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from mltrail.capture import data, environment, git


def _dist(folder: Path, name: str, version: str) -> None:
    info = folder / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


def test_installed_packages_sees_an_install_and_an_upgrade(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    before = environment.installed_packages()
    assert "mltrail-cache-probe" not in before
    assert environment.installed_packages() == before  # unchanged: the same answer
    _dist(site, "mltrail_cache_probe", "1.0")
    assert environment.installed_packages()["mltrail-cache-probe"] == "1.0"
    for info in site.glob("*.dist-info"):
        for f in info.iterdir():
            f.unlink()
        info.rmdir()
    _dist(site, "mltrail_cache_probe", "2.0")
    assert environment.installed_packages()["mltrail-cache-probe"] == "2.0"


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t", *args],
        check=True,
        capture_output=True,
    )


def test_data_pointer_listing_sees_a_new_pointer(tmp_path: Path, capture_isolation: None) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "train.py").write_text("x = 1\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "c")
    time.sleep(0.1)  # past the stamp's racy window: the listing may be cached from here on
    git.capture_code(repo, [])  # the git status that lets the tree be stamped
    first = data.capture_data(repo).data
    assert git.tree_stamp(repo) is not None
    assert data.capture_data(repo).data == first  # from the cache: the same
    pointer = repo / "images.dvc"
    pointer.write_text(
        "outs:\n- md5: 0123456789abcdef0123456789abcdef\n  size: 3\n  path: images\n"
    )
    time.sleep(0.1)  # a stamp that can be trusted again, and differs from the cached one
    assert git.tree_stamp(repo) is not None
    found = data.capture_data(repo).data
    assert found != first
    assert "images.dvc" in str(found)
