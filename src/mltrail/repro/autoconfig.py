"""Config captured from an unmodified Python program under ``mltrail run``.

The wrapper puts ``_hook/`` first on the child's ``PYTHONPATH`` (its ``sitecustomize``
records the namespace ``argparse`` parsed) and reads Hydra's composed config and overrides
from the ``.hydra/`` folder the run wrote. What it finds is recorded as the run's ``config``
(source ``argparse`` or ``hydra``, secret-looking keys redacted) and as params, unless the
program called ``mltrail.init()`` itself (its own config wins).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mltrail.sdk.run import Run

__all__ = [
    "AUTOCONFIG_ENV",
    "HOOK_DIR",
    "PROGRAM_KIND",
    "AutoConfig",
    "hydra_config",
    "redact_config",
]

AUTOCONFIG_ENV = "MLTRAIL_AUTOCONFIG_DIR"
#: the state kind listing the random-number libraries the program imported
PROGRAM_KIND = "program"
HOOK_DIR = Path(__file__).resolve().parent / "_hook"
_SECRET_KEY_WORDS = frozenset({"pass", "key"})


def redact_config(value: Any) -> Any:
    """``value`` with the values of secret-looking keys (``password``, ``pass``, ``secret``,
    ``token``, ``key``, ``api_key``, ``credential`` ...) replaced by ``***``."""
    import re

    from mltrail.capture.config import REDACTED, _secret_name

    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            words = set(re.split(r"[-_.+/\s]+", str(k).lower()))
            secret = _secret_name(str(k)) or bool(words & _SECRET_KEY_WORDS)
            out[str(k)] = REDACTED if secret and not isinstance(v, dict) else redact_config(v)
        return out
    if isinstance(value, list):
        return [redact_config(v) for v in value]
    return value


def hydra_config(folder: Path, written: list[str]) -> dict[str, Any] | None:
    """Hydra's composed config and overrides from the first ``.hydra/`` folder written."""
    found = sorted(p for p in written if p.endswith(".hydra/config.yaml"))
    if not found:
        return None
    try:
        import yaml
    except ImportError:
        return None
    hydra_dir = (folder / found[0]).parent
    try:
        composed = yaml.safe_load((hydra_dir / "config.yaml").read_text(encoding="utf-8"))
        overrides_file = hydra_dir / "overrides.yaml"
        overrides = (
            yaml.safe_load(overrides_file.read_text(encoding="utf-8"))
            if overrides_file.exists()
            else []
        )
    except (OSError, ValueError, yaml.YAMLError):
        return None
    if not isinstance(composed, dict):
        return None
    from mltrail.capture.config import redact_args

    return {
        "config": composed,
        "overrides": redact_args([str(o) for o in overrides or []]),
        "output_dir": str(hydra_dir.parent.relative_to(folder)),
        "runs": len(found),
    }


class AutoConfig:
    """The hook's folder and environment for one command, and what it found."""

    def __init__(self, env: Mapping[str, str] | None) -> None:
        """Make the folder the hook writes into; :attr:`env` points the child at it."""
        self.folder = Path(tempfile.mkdtemp(prefix="mltrail-autoconfig-"))
        base = os.environ if env is None else env
        rest = base.get("PYTHONPATH")
        self.env = {
            AUTOCONFIG_ENV: str(self.folder),
            "PYTHONPATH": os.pathsep.join([str(HOOK_DIR), *([rest] if rest else [])]),
        }

    def _read(self, name: str) -> Any:
        try:
            return json.loads((self.folder / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def record(self, run: Run, cwd: Path, written: list[str], argv: list[str]) -> None:
        """Record what was found on ``run`` (then remove the folder)."""
        try:
            self._record(run, cwd, written, argv)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def _record(self, run: Run, cwd: Path, written: list[str], argv: list[str]) -> None:
        from mltrail.capture.config import redact_args

        used_sdk = any(self.folder.glob("sdk-*.json"))
        modules = self._read("modules.json")
        if isinstance(modules, dict) and isinstance(modules.get("imported"), list):
            run.recorder.state(PROGRAM_KIND, {"imported": [str(m) for m in modules["imported"]]})
        parsed = self._read("argparse.json")
        clicked = self._read("click.json")
        hydra = hydra_config(cwd, written)
        doc: dict[str, Any] | None = None
        if hydra is not None:
            config = redact_config(hydra.pop("config"))
            doc = {"config": config, "source": "hydra", "hydra": hydra}
        elif isinstance(parsed, dict) and isinstance(parsed.get("args"), dict):
            config = redact_config(parsed["args"])
            doc = {"config": config, "source": "argparse", "hydra": None}
        elif isinstance(clicked, dict) and isinstance(clicked.get("args"), dict):
            config = redact_config(clicked["args"])
            doc = {"config": config, "source": "click", "hydra": None}
            doc["command"] = str(clicked.get("command") or "")
        if doc is None:
            return
        doc["argv"] = redact_args(argv)
        doc["automatic"] = True
        run.recorder.state("autoconfig", doc)
        if used_sdk:
            return  # the program's own init() recorded its config: it wins
        run.recorder.state("config", doc)
        try:
            run.log_params(doc["config"])
        except Exception:  # a value with no stable form, a conflict: the state keeps it
            pass
