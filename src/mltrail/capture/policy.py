"""A repository's run policy, committed with its code in ``.mltrail/config.toml``::

    require_clean = true          # refuse runs from uncommitted code (also under [run])

    [run]
    metrics = ['loss=([0-9.e+-]+)']   # console metrics for `mltrail run`

    [check]                          # what `mltrail check` requires
    min_score = 0.8
    require = ["code", "seed"]

``MLTRAIL_REQUIRE_CLEAN=1`` and ``mltrail run --require-clean`` set the same rule for one
shell or one run. Read-only; a missing or unreadable file is no policy.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mltrail.settings import DEFAULT_STORE_DIRNAME

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["RunPolicy", "run_policy"]


@dataclass(frozen=True, slots=True)
class RunPolicy:
    """What ``.mltrail/config.toml`` asks of every run.

    Attributes:
        require_clean: Refuse runs with modified tracked files or untracked source files.
        metrics: ``NAME=REGEX`` console metrics for ``mltrail run``.
        error: Why the file could not be read (None when read or absent).
        check_min_score: ``[check] min_score``.
        check_require: ``[check] require``: checklist items that must pass.
    """

    require_clean: bool = False
    metrics: tuple[str, ...] = ()
    error: str | None = None
    check_min_score: float | None = None
    check_require: tuple[str, ...] = ()


def run_policy(root: Path | None) -> RunPolicy:
    """The policy of the repository at ``root`` (None: outside git, no policy)."""
    if root is None:
        return RunPolicy()
    path = root / DEFAULT_STORE_DIRNAME / "config.toml"
    try:
        doc: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return RunPolicy()
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return RunPolicy(error=f"{path}: {exc}")
    run = doc.get("run") if isinstance(doc.get("run"), dict) else {}
    assert isinstance(run, dict)
    require = run.get("require_clean", doc.get("require_clean", False))
    metrics = run.get("metrics", [])
    if isinstance(metrics, str):
        metrics = [metrics]
    if not isinstance(metrics, list):
        metrics = []
    check = doc.get("check") if isinstance(doc.get("check"), dict) else {}
    assert isinstance(check, dict)
    score = check.get("min_score")
    required = check.get("require", [])
    return RunPolicy(
        require_clean=require is True,
        metrics=tuple(m for m in metrics if isinstance(m, str)),
        check_min_score=float(score) if isinstance(score, (int, float)) else None,
        check_require=tuple(r for r in required if isinstance(r, str))
        if isinstance(required, list)
        else (),
    )
