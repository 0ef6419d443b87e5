"""The software environment of a reproduction: compare it with the record, or rebuild it.

``current``: the running interpreter is reused and every package whose version differs from
the recording is reported. ``rebuild``: a fresh virtual environment is made from the recorded
frozen requirements (``name==version`` of every distribution the original saw), with ``uv``
when it is available (next to this interpreter or on ``PATH``), else ``python -m venv`` and
pip. Installation is ``--no-deps`` (the frozen list is already the whole closure); a package
the indexes cannot provide at its version is reported and left out, and the rest installed.
mltrail itself is copied in from this installation (an editable or local build is not on
any index).
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mltrail.errors import EnvironmentBuildError

__all__ = [
    "PackageChange",
    "RebuiltEnv",
    "find_uv",
    "package_changes",
    "pip_index_options",
    "rebuild_environment",
]

_TIMEOUT_S = 1800.0
_MAX_ROUNDS = 25
_SELF = "mltrail"
# "Because there is no version of X==1.0", "No matching distribution found for X==1.0",
# "Could not find a version that satisfies the requirement X==1.0"
_UNAVAILABLE = (
    re.compile(r"there is no version of ([A-Za-z0-9._-]+)==", re.I),
    re.compile(r"No matching distribution found for ([A-Za-z0-9._-]+)==", re.I),
    re.compile(r"satisfies the requirement ([A-Za-z0-9._-]+)==", re.I),
    re.compile(r"Because ([A-Za-z0-9._-]+) was not found in the package registry", re.I),
    re.compile(r"([A-Za-z0-9._-]+)==\S+ was not found in the package registry", re.I),
    re.compile(
        r"Failed to (?:build|download|prepare distributions?)[^`]*`([A-Za-z0-9._-]+)==", re.I
    ),
)


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True, slots=True)
class PackageChange:
    """A distribution whose version differs: ``recorded`` → ``here`` (None where absent)."""

    name: str
    recorded: str | None
    here: str | None

    @property
    def change(self) -> str:
        """``added``, ``removed``, ``upgraded``, ``downgraded`` or ``changed``."""
        if self.recorded is None:
            return "added"
        if self.here is None:
            return "removed"
        from mltrail.diff import _version_change

        return _version_change(self.recorded, self.here)

    def describe(self) -> str:
        """``numpy 1.26.4 → 2.0.0 (upgraded)``."""
        return (
            f"{self.name} {self.recorded or '(absent)'} → {self.here or '(absent)'} ({self.change})"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "name": self.name,
            "recorded": self.recorded,
            "here": self.here,
            "change": self.change,
        }


def package_changes(recorded: dict[str, str], here: dict[str, str]) -> list[PackageChange]:
    """Distributions whose versions differ between the record and ``here``, by name."""
    a = {_normalize(k): str(v) for k, v in recorded.items()}
    b = {_normalize(k): str(v) for k, v in here.items()}
    return [
        PackageChange(name, a.get(name), b.get(name))
        for name in sorted(set(a) | set(b))
        if a.get(name) != b.get(name)
    ]


def find_uv() -> str | None:
    """The ``uv`` executable: next to this interpreter (a venv's bin/), else on ``PATH``."""
    beside = Path(sys.executable).parent / "uv"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("uv")


def _pip_config() -> dict[str, str]:
    """pip's ``[global]``/``[install]`` settings from its config files and ``PIP_*`` variables."""
    files = [Path("/etc/pip.conf"), Path("/etc/xdg/pip/pip.conf")]
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    files += [Path(xdg) / "pip" / "pip.conf", Path.home() / ".pip" / "pip.conf"]
    if os.environ.get("VIRTUAL_ENV"):
        files.append(Path(os.environ["VIRTUAL_ENV"]) / "pip.conf")
    if os.environ.get("PIP_CONFIG_FILE"):
        files.append(Path(os.environ["PIP_CONFIG_FILE"]))
    out: dict[str, str] = {}
    for path in files:
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, OSError, UnicodeDecodeError):
            continue
        for section in ("global", "install"):
            if parser.has_section(section):
                out.update(dict(parser.items(section)))
    for key in ("index-url", "extra-index-url", "find-links", "no-index"):
        env = os.environ.get("PIP_" + key.upper().replace("-", "_"))
        if env:
            out[key] = env
    return out


def pip_index_options() -> list[str]:
    """The index options pip is configured with, as ``uv pip install`` arguments.

    uv does not read pip's configuration; passing these gives both installers the same
    sources. uv's own ``UV_*`` variables, when set, win.
    """
    if any(os.environ.get(v) for v in ("UV_INDEX_URL", "UV_DEFAULT_INDEX", "UV_EXTRA_INDEX_URL")):
        return []
    cfg = _pip_config()
    args: list[str] = []
    if cfg.get("index-url"):
        args += ["--index-url", cfg["index-url"].split()[0]]
    for url in (cfg.get("extra-index-url") or "").split():
        args += ["--extra-index-url", url]
    for link in (cfg.get("find-links") or "").split():
        args += ["--find-links", link]
    if cfg.get("no-index", "").lower() in ("1", "true", "yes", "on"):
        args.append("--no-index")
    if len(args) > 2 or "--extra-index-url" in args:
        args += ["--index-strategy", "unsafe-best-match"]  # pip's rule: best match of all
    return args


@dataclass(slots=True)
class RebuiltEnv:
    """A virtual environment made from a recording.

    Attributes:
        path: The environment's root.
        python: Its interpreter.
        tool: ``uv`` or ``pip``.
        installed: Packages installed at their recorded versions.
        unavailable: ``name==version`` that could not be had (left out).
        seconds: Wall time of creation and installation.
        python_version: The interpreter's version (may differ from the record's).
    """

    path: Path
    python: Path
    tool: str
    installed: list[str] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)
    seconds: float = 0.0
    python_version: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "path": str(self.path),
            "python": str(self.python),
            "tool": self.tool,
            "installed": len(self.installed),
            "unavailable": list(self.unavailable),
            "seconds": round(self.seconds, 3),
            "python_version": self.python_version,
        }


def _run(cmd: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=_TIMEOUT_S,
            check=False,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EnvironmentBuildError(f"{Path(cmd[0]).name} could not run: {exc}") from None


def _interpreter(python_version: str | None, uv: str | None) -> str:
    """An interpreter of the recorded version when one is installed, else this one."""
    here = ".".join(map(str, sys.version_info[:3]))
    if not python_version or python_version == here or uv is None:
        return sys.executable
    found = _run([uv, "python", "find", "--no-python-downloads", python_version])
    return (
        found.stdout.strip() if found.returncode == 0 and found.stdout.strip() else sys.executable
    )


def _unavailable_in(output: str, pending: dict[str, str]) -> set[str]:
    names: set[str] = set()
    for pattern in _UNAVAILABLE:
        for match in pattern.finditer(output):
            name = _normalize(match.group(1))
            if name in pending:
                names.add(name)
    return names


def _site_packages(python: Path) -> Path:
    out = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    if out.returncode != 0 or not out.stdout.strip():
        raise EnvironmentBuildError(
            f"cannot locate site-packages of {python}: {out.stderr.strip()}"
        )
    return Path(out.stdout.strip())


def rebuild_environment(
    requirements: str,
    dest: Path,
    *,
    python_version: str | None = None,
    use_uv: bool | None = None,
) -> RebuiltEnv:
    """Create a virtual environment at ``dest`` holding the recorded packages.

    Args:
        requirements: ``name==version`` lines (the recording's frozen requirements).
        dest: Where to create the environment (must not exist).
        python_version: The recorded Python version; an installed interpreter of that
            version is used when uv finds one, else this interpreter.
        use_uv: Force uv (True) or pip (False); default uv when available.

    Returns:
        The :class:`RebuiltEnv` (what could not be installed is in ``unavailable``).

    Raises:
        EnvironmentBuildError: the environment itself cannot be created.
    """
    started = time.perf_counter()
    uv = find_uv() if use_uv is not False else None
    if use_uv and uv is None:
        raise EnvironmentBuildError("uv was asked for but is not installed")
    pending: dict[str, str] = {}
    for line in requirements.splitlines():
        name, sep, version = line.strip().partition("==")
        if sep and name and _normalize(name) != _SELF:
            pending[_normalize(name)] = version.strip()
    base = _interpreter(python_version, uv)
    if uv is not None:
        made = _run([uv, "venv", "--quiet", "--python", base, str(dest)])
    else:
        made = _run([base, "-m", "venv", str(dest)])
    if made.returncode != 0:
        raise EnvironmentBuildError(f"cannot create a virtual environment: {made.stderr.strip()}")
    python = dest / "bin" / "python"
    env = RebuiltEnv(dest, python, "uv" if uv else "pip")
    unavailable: list[str] = []
    reqfile = dest / "mltrail-requirements.txt"
    for _round in range(_MAX_ROUNDS):
        if not pending:
            break
        reqfile.write_text("".join(f"{n}=={v}\n" for n, v in sorted(pending.items())))
        if uv is not None:
            cmd = [uv, "pip", "install", "--quiet", "--python", str(python), "--no-deps"]
            cmd += [*pip_index_options(), "-r", str(reqfile)]
        else:
            cmd = [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "-r", str(reqfile)]
            cmd += ["--disable-pip-version-check", "--no-input"]
        done = _run(cmd)
        if done.returncode == 0:
            break
        bad = _unavailable_in(done.stdout + done.stderr, pending)
        if not bad:
            detail = (done.stderr or done.stdout).strip().splitlines()
            raise EnvironmentBuildError(
                f"{env.tool} could not install the recorded packages: "
                f"{'; '.join(detail[-3:]) or f'exit status {done.returncode}'}"
            )
        for name in sorted(bad):
            unavailable.append(f"{name}=={pending.pop(name)}")
    env.installed = [f"{n}=={v}" for n, v in sorted(pending.items())]
    env.unavailable = unavailable
    _link_self(python)
    found = _run([str(python), "-c", "import platform; print(platform.python_version())"])
    env.python_version = found.stdout.strip()
    env.seconds = time.perf_counter() - started
    return env


def _link_self(python: Path) -> None:
    """Install this mltrail into the new environment: a copy of the package (not on any
    index when it is an editable or local build) with a minimal ``dist-info``."""
    import mltrail

    site = _site_packages(python)
    package = Path(mltrail.__file__).resolve().parent
    shutil.copytree(package, site / "mltrail", ignore=shutil.ignore_patterns("__pycache__"))
    info = site / f"mltrail-{mltrail.__version__}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: mltrail\nVersion: {mltrail.__version__}\n"
    )
    (info / "INSTALLER").write_text("mltrail-reproduce\n")
