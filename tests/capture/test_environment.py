"""Environment capture: Python, distributions, lock files, container, Nix and the env allow-list."""

from __future__ import annotations

import importlib.metadata
import json
import platform
import re
import sys
from pathlib import Path

import pytest

from mltrail.capture import environment
from mltrail.capture.base import Capturer, blob_digest
from mltrail.capture.environment import (
    EnvironmentCapturer,
    allowed_env,
    capture_environment,
    installed_packages,
)


def _slow_packages() -> dict[str, str]:
    """The reference answer: every distribution's own metadata, first on sys.path wins."""
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = re.sub(r"[-_.]+", "-", dist.metadata["Name"]).lower()
        found.setdefault(name, dist.metadata["Version"])
    return found


def test_python_section_describes_this_interpreter() -> None:
    """Version, implementation, executable and venv detection match the running Python."""
    python = capture_environment().data["python"]
    assert python == {
        "version": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "prefix": sys.prefix,
        "base_prefix": sys.base_prefix,
        "venv": sys.prefix != sys.base_prefix,
    }


def test_packages_match_distribution_metadata() -> None:
    """The fast folder-name path yields exactly what each distribution's metadata says."""
    packages = installed_packages()
    assert packages == _slow_packages()
    assert packages["pytest"] == importlib.metadata.version("pytest")
    assert list(packages) == sorted(packages)
    assert all(name == name.lower() and "_" not in name for name in packages)


def test_requirements_blob_lists_every_package_pinned() -> None:
    """The requirements blob is a sorted name==version list of the captured packages."""
    captured = capture_environment()
    content = captured.blobs[captured.data["requirements"]]
    assert blob_digest(content) == captured.data["requirements"]
    lines = content.decode().splitlines()
    assert lines == [f"{n}=={v}" for n, v in captured.data["packages"].items()]
    names = [line.partition("==")[0] for line in lines]
    assert names == sorted(names)


def test_lock_files_at_the_repo_root_are_stored_by_digest(tmp_path: Path) -> None:
    """Known lock and requirement files are found and stored; other files are ignored."""
    files = {
        "uv.lock": b"version = 1\n",
        "requirements.txt": b"numpy==2.0\n",
        "requirements-dev.txt": b"pytest\n",
        "environment.yml": b"name: x\n",
        "pylock.toml": b"lock-version = '1.0'\n",
        "notes.txt": b"not a lock file",
        "setup.py": b"",
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "poetry.lock").write_bytes(b"nested, not at the root")
    captured = capture_environment(tmp_path)
    entries = captured.data["lock_files"]
    names = [e["path"] for e in entries]
    assert names == sorted(
        ["environment.yml", "pylock.toml", "requirements-dev.txt", "requirements.txt", "uv.lock"]
    )
    for entry in entries:
        content = files[entry["path"]]
        assert entry["digest"] == blob_digest(content)
        assert entry["size"] == len(content)
        assert captured.blobs[entry["digest"]] == content


def test_oversized_lock_file_keeps_digest_but_not_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lock file over the size cap is identified by digest and not stored."""
    content = b"x" * 100
    (tmp_path / "poetry.lock").write_bytes(content)
    monkeypatch.setattr(environment, "LOCK_FILE_MAX_BYTES", 10)
    captured = capture_environment(tmp_path)
    [entry] = captured.data["lock_files"]
    assert entry == {
        "path": "poetry.lock",
        "digest": blob_digest(content),
        "size": 100,
        "stored": False,
    }
    assert entry["digest"] not in captured.blobs


def test_no_repo_root_means_no_lock_file_search() -> None:
    """Without a repository root no lock files are looked for."""
    assert capture_environment(None).data["lock_files"] == []


def test_only_allow_listed_variables_are_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Numerics-changing variables are kept; secrets and everything else never appear."""
    secrets = {
        "AWS_SECRET_ACCESS_KEY": "aws-very-secret",
        "AWS_SESSION_TOKEN": "aws-session-secret",
        "GITHUB_TOKEN": "ghp_secret",
        "HF_TOKEN": "hf_secret",
        "MLTRAIL_TOKEN": "mlt_secret",
        "TORCH_HOME": "/secret/torch-home",
        "DATABASE_URL": "postgresql://u:pw-secret@h/db",
    }
    kept = {
        "CUDA_VISIBLE_DEVICES": "0,1",
        "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
        "OMP_NUM_THREADS": "4",
        "MKL_NUM_THREADS": "2",
        "MKL_CBWR": "AVX2",
        "OPENBLAS_NUM_THREADS": "1",
        "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE": "0",
        "TORCH_CUDNN_V8_API_DISABLED": "1",
        "XLA_FLAGS": "--xla_gpu_deterministic_ops=true",
        "MLTRAIL_SEED": "7",
    }
    for name, value in {**secrets, **kept}.items():
        monkeypatch.setenv(name, value)
    captured = capture_environment()
    env = captured.data["env"]
    for name, value in kept.items():
        assert env[name] == value
    assert not set(secrets) & set(env)
    dumped = json.dumps(captured.data)
    assert not any(value in dumped for value in secrets.values())
    assert set(env) <= set(allowed_env()) | set(kept)


def test_allowed_env_reads_a_given_mapping() -> None:
    """allowed_env filters an explicit mapping; PYTHONHASHSEED belongs to the seeds record."""
    assert allowed_env({"PYTHONHASHSEED": "0", "PATH": "/bin", "MKL_X": "1"}) == {"MKL_X": "1"}


def test_image_digest_from_env_is_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    """MLTRAIL_IMAGE_DIGEST names the container image."""
    digest = "sha256:" + "ab" * 32
    monkeypatch.setenv("MLTRAIL_IMAGE_DIGEST", digest)
    assert capture_environment().data["container"]["image_digest"] == digest


def test_podman_containerenv_is_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Podman's /run/.containerenv gives the image and image id."""
    text = (
        'engine="podman-4.9"\nname="job"\nid="abc"\nimage="docker.io/lib/py:3.11"\nimageid="f00"\n'
    )
    monkeypatch.setattr(environment, "_read_text", lambda path: text)
    assert environment._containerenv() == {
        "engine": "podman-4.9",
        "name": "job",
        "id": "abc",
        "image": "docker.io/lib/py:3.11",
        "imageid": "f00",
    }


def test_container_is_none_or_a_description(monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside a container nothing is claimed; inside one a runtime is named."""
    monkeypatch.delenv("MLTRAIL_IMAGE_DIGEST", raising=False)
    container = capture_environment().data["container"]
    assert container is None or isinstance(container.get("runtime"), str)


def test_nix_shell_hash_is_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    """In a nix shell the store hash of $out is recorded."""
    monkeypatch.setenv("IN_NIX_SHELL", "impure")
    monkeypatch.setenv("out", "/nix/store/0abc123xyz-shell-env")
    nix = capture_environment().data["nix"]
    assert nix["in_nix_shell"] == "impure"
    assert nix["shell_hash"] == "0abc123xyz"


def test_no_nix_outside_a_nix_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside Nix (and with a Python not from the store) nix is None."""
    monkeypatch.delenv("IN_NIX_SHELL", raising=False)
    if sys.prefix.startswith("/nix/store/"):
        pytest.skip("this Python itself lives in the Nix store")
    assert capture_environment().data["nix"] is None


def test_broken_package_metadata_is_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure while listing distributions becomes an error entry, not an exception."""

    def broken() -> dict[str, str]:
        raise RuntimeError("bad METADATA")

    monkeypatch.setattr(environment, "installed_packages", broken)
    captured = capture_environment()
    assert captured.data["packages"] == {}
    assert captured.data["errors"] == {"packages": "RuntimeError: bad METADATA"}


def test_capture_is_json_and_a_capturer(tmp_path: Path) -> None:
    """The data is JSON-able and EnvironmentCapturer satisfies the protocol."""
    capturer = EnvironmentCapturer(tmp_path)
    assert isinstance(capturer, Capturer)
    captured = capturer.capture()
    assert captured.kind == "environment"
    assert json.loads(json.dumps(captured.data)) == captured.data
