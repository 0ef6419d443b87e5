"""Environment capture: Python, installed distributions, lock files, container, Nix, env vars.

Only an allow-list of environment variables that change numerics is recorded; no other
variable is ever read into the capture, so secrets in the environment cannot leak into a run.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

from mltrail.capture.base import Captured, blob_digest
from mltrail.settings import settings

__all__ = [
    "ENV_ALLOWLIST",
    "ENV_ALLOWLIST_PREFIXES",
    "LOCK_FILE_MAX_BYTES",
    "EnvironmentCapturer",
    "allowed_env",
    "capture_environment",
    "installed_packages",
]

ENV_ALLOWLIST = frozenset(
    {
        "CUDA_VISIBLE_DEVICES",
        "CUBLAS_WORKSPACE_CONFIG",
        "OMP_NUM_THREADS",
        "XLA_FLAGS",
        "TF_DETERMINISTIC_OPS",
        "TF_CUDNN_DETERMINISTIC",
        "NVIDIA_TF32_OVERRIDE",
        "CUDA_LAUNCH_BLOCKING",
        "NCCL_ALGO",
        "NCCL_PROTO",
        "JAX_ENABLE_X64",
        "JAX_DEFAULT_MATMUL_PRECISION",
        "MLTRAIL_SEED",
    }
)
ENV_ALLOWLIST_PREFIXES = ("MKL_", "OPENBLAS_", "TORCH_CUDNN_V8_API_", "TORCH_ALLOW_TF32_")
LOCK_FILE_MAX_BYTES = 16 * 1024 * 1024
IMAGE_DIGEST_ENV = "MLTRAIL_IMAGE_DIGEST"

_LOCK_PATTERNS = (
    "uv.lock",
    "poetry.lock",
    "pylock.toml",
    "pylock.*.toml",
    "requirements*.txt",
    "Pipfile.lock",
    "environment.yml",
    "environment.yaml",
    "conda-lock.yml",
    "pixi.lock",
)
_DIST_INFO = re.compile(r"^(?P<name>[A-Za-z0-9._]+)-(?P<version>[^-]+)\.dist-info$")
_CONTAINER_ID = re.compile(r"[0-9a-f]{64}")
_CGROUP_RUNTIMES: tuple[tuple[str, str], ...] = (
    ("kubepods", "kubernetes"),
    ("docker", "docker"),
    ("libpod", "podman"),
    ("containerd", "containerd"),
    ("lxc", "lxc"),
)


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


_packages: tuple[tuple[Any, ...], dict[str, str]] | None = None


def _path_stamp() -> tuple[Any, ...]:
    """``sys.path`` and the stat of each folder on it: installing or removing a
    distribution adds or removes a folder there, which changes the folder's mtime."""
    out: list[Any] = []
    for entry in sys.path:
        try:
            st = os.stat(entry or ".")
        except OSError:
            out.append((entry, None))
            continue
        out.append((entry, st.st_mtime_ns, st.st_ctime_ns, st.st_ino))
    return tuple(out)


def installed_packages() -> dict[str, str]:
    """Every importable distribution and its version (read again only when a folder on
    ``sys.path`` has changed since the last call).

    Names and versions come from the ``name-version.dist-info`` folder name where the wheel
    spec guarantees that form; other layouts (egg-info, zips) read their metadata. When a
    name is installed twice on ``sys.path``, the first one (the one imports see) wins.

    Returns:
        ``{normalized lowercase name: version}``, sorted by name.
    """
    global _packages
    stamp = _path_stamp()
    hit = _packages
    if hit is not None and hit[0] == stamp:
        return dict(hit[1])
    found = _scan_packages()
    _packages = (stamp, found)
    return dict(found)


def _scan_packages() -> dict[str, str]:
    """Every importable distribution and its version, in one pass."""
    from importlib.metadata import distributions

    packages: dict[str, str] = {}
    for dist in distributions():
        path = getattr(dist, "_path", None)
        match = _DIST_INFO.match(path.name) if isinstance(path, Path) else None
        if match:
            name, version = match["name"], match["version"]
        else:
            meta = dist.metadata
            name, version = meta["Name"], meta["Version"]
            if not name or not version:
                continue
        packages.setdefault(_normalize(name), version)
    return dict(sorted(packages.items()))


def _python() -> dict[str, Any]:
    return {
        "version": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "prefix": sys.prefix,
        "base_prefix": sys.base_prefix,
        "venv": sys.prefix != sys.base_prefix,
    }


def _file_digest(path: Path) -> tuple[str, int, bytes | None]:
    """Digest and size of a file; its content too when at most LOCK_FILE_MAX_BYTES."""
    size = path.stat().st_size
    if size <= LOCK_FILE_MAX_BYTES:
        content = path.read_bytes()
        return blob_digest(content), len(content), content
    hasher = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            hasher.update(chunk)
    return "sha256:" + hasher.hexdigest(), size, None


def _lock_files(root: Path) -> tuple[list[dict[str, Any]], dict[str, bytes]]:
    found: set[Path] = set()
    for pattern in _LOCK_PATTERNS:
        found.update(p for p in root.glob(pattern) if p.is_file())
    entries: list[dict[str, Any]] = []
    blobs: dict[str, bytes] = {}
    for path in sorted(found):
        entry: dict[str, Any] = {"path": path.name}
        try:
            digest, size, content = _file_digest(path)
        except OSError as exc:
            entry.update(digest=None, size=None, error=f"unreadable: {exc.strerror or exc}")
        else:
            entry.update(digest=digest, size=size)
            if content is None:
                entry["stored"] = False  # too large to keep; the digest still identifies it
            else:
                blobs[digest] = content
        entries.append(entry)
    return entries, blobs


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(65536)
    except OSError:
        return None


def _containerenv() -> dict[str, str]:
    """``key="value"`` lines podman writes to /run/.containerenv (image, imageid, ...)."""
    text = _read_text("/run/.containerenv") or ""
    pairs = (line.partition("=") for line in text.splitlines())
    return {k.strip(): v.strip().strip('"') for k, sep, v in pairs if sep and v.strip('"')}


def _container() -> dict[str, Any] | None:
    info: dict[str, Any] = {}
    if digest := settings().image_digest:
        info["image_digest"] = digest
    for var in ("APPTAINER_CONTAINER", "SINGULARITY_CONTAINER"):
        if image := os.environ.get(var):
            info.setdefault("runtime", "apptainer")
            info.setdefault("image", image)
    if os.path.exists("/run/.containerenv"):
        info.setdefault("runtime", "podman")
        podman = _containerenv()
        for key in ("image", "imageid", "id", "name"):
            if key in podman:
                info.setdefault("image_id" if key == "imageid" else key, podman[key])
    if os.path.exists("/.dockerenv"):
        info.setdefault("runtime", "docker")
    cgroup = _read_text("/proc/self/cgroup") or ""
    for hint, runtime in _CGROUP_RUNTIMES:
        if hint in cgroup:
            info.setdefault("runtime", runtime)
            break
    if "runtime" in info and (match := _CONTAINER_ID.search(cgroup)):
        info.setdefault("id", match.group())
    if "KUBERNETES_SERVICE_HOST" in os.environ:
        info.setdefault("orchestrator", "kubernetes")
    return info or None


def _nix_hash(path: str, store: str) -> str | None:
    if not path.startswith(store + "/"):
        return None
    name = path[len(store) + 1 :].split("/", 1)[0]
    return name.split("-", 1)[0] or None


def _nix() -> dict[str, Any] | None:
    store = os.environ.get("NIX_STORE", "/nix/store").rstrip("/")
    shell = os.environ.get("IN_NIX_SHELL")
    prefix = os.path.realpath(sys.prefix)
    python_hash = _nix_hash(prefix, store)
    if not shell and python_hash is None:
        return None
    info: dict[str, Any] = {"in_nix_shell": shell, "store": store}
    out = os.environ.get("out", "")  # noqa: SIM112 - nix-shell sets lowercase $out
    if shell and _nix_hash(out, store):
        info.update(shell_out=out, shell_hash=_nix_hash(out, store))
    if python_hash:
        info.update(python_store_path=prefix, python_hash=python_hash)
    return info


def allowed_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The allow-listed, numerics-changing environment variables that are set.

    Args:
        environ: The environment to read; None means ``os.environ``.

    Returns:
        ``{name: value}`` for names in :data:`ENV_ALLOWLIST` or starting with one of
        :data:`ENV_ALLOWLIST_PREFIXES`, sorted. No other variable is ever included.
    """
    env = os.environ if environ is None else environ
    keep = {
        name: value
        for name, value in env.items()
        if name in ENV_ALLOWLIST or name.startswith(ENV_ALLOWLIST_PREFIXES)
    }
    return dict(sorted(keep.items()))


def _requirements(packages: dict[str, str]) -> bytes:
    return "".join(f"{name}=={version}\n" for name, version in packages.items()).encode()


def capture_environment(
    repo_root: Path | None = None, environ: Mapping[str, str] | None = None
) -> Captured:
    """Capture the software environment a run executes in.

    Args:
        environ: The environment variables the run executes with (None: this process's).
        repo_root: Where to look for lock and requirement files (uv.lock, poetry.lock,
            pylock.toml, requirements*.txt, Pipfile.lock, environment.yml/.yaml,
            conda-lock.yml, pixi.lock); None skips the search.

    Returns:
        Kind ``"environment"`` with ``python``, ``packages``, ``lock_files``,
        ``requirements`` (digest of a sorted ``name==version`` list, stored as a blob),
        ``container``, ``nix`` and ``env``. Lock-file contents up to 16 MiB are blobs. A
        probe that fails records ``errors`` instead of raising.
    """
    blobs: dict[str, bytes] = {}
    errors: dict[str, str] = {}
    packages: dict[str, str] = {}
    try:
        packages = installed_packages()
    except Exception as exc:  # a broken distribution must not break the run
        errors["packages"] = f"{type(exc).__name__}: {exc}"
    requirements = _requirements(packages)
    blobs[blob_digest(requirements)] = requirements
    lock_files: list[dict[str, Any]] = []
    if repo_root is not None:
        try:
            lock_files, lock_blobs = _lock_files(repo_root)
            blobs.update(lock_blobs)
        except OSError as exc:
            errors["lock_files"] = f"{type(exc).__name__}: {exc}"
    data: dict[str, Any] = {
        "python": _python(),
        "packages": packages,
        "lock_files": lock_files,
        "requirements": blob_digest(requirements),
        "container": _container(),
        "nix": _nix(),
        "env": allowed_env(None if environ is None else dict(environ)),
    }
    if errors:
        data["errors"] = errors
    return Captured(kind="environment", data=data, blobs=blobs)


class EnvironmentCapturer:
    """:class:`~mltrail.capture.base.Capturer` for the environment."""

    kind = "environment"

    def __init__(self, repo_root: Path | None = None) -> None:
        """Remember where lock files live.

        Args:
            repo_root: As for :func:`capture_environment`.
        """
        self._repo_root = repo_root

    def available(self) -> bool:
        """Always true: Python's own metadata is always there."""
        return True

    def capture(self) -> Captured:
        """Capture now; see :func:`capture_environment`."""
        return capture_environment(self._repo_root)
