"""Run naming and tagging conventions, committed in ``.mltrail/config.toml``::

    [conventions]                       # every project
    required_tags = ["team"]
    name_pattern = "^[a-z]+-[0-9]+$"    # a Python regular expression the name must match
    on_violation = "error"              # or "warn"

    [conventions.projects.fraud]        # one project: its keys replace the general ones
    required_tags = ["team", "ticket"]

:func:`check_run` is called by ``init()`` when a new run is created: with ``error`` it raises
:class:`~mltrail.errors.InvalidArgumentError` listing every broken convention (before
anything is written), with ``warn`` it logs one warning per convention and the run starts.
The file is found from the run's code folder upwards, up to its git root; none: no rules.
"""

from __future__ import annotations

import logging
import re
import tomllib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mltrail.errors import InvalidArgumentError

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

__all__ = ["Conventions", "check_run", "config_dir", "load_conventions"]

_KEYS = {"required_tags", "name_pattern", "on_violation", "projects"}
log = logging.getLogger("mltrail")


@dataclass(frozen=True, slots=True)
class Conventions:
    """What a project's runs must carry."""

    required_tags: tuple[str, ...] = ()
    name_pattern: str | None = None
    on_violation: str = "error"


def config_dir(start: Path) -> Path | None:
    """The ``.mltrail`` folder holding ``config.toml``, from ``start`` up to the git root."""
    here = start.resolve()
    for folder in (here, *here.parents):
        if (folder / ".mltrail" / "config.toml").is_file():
            return folder / ".mltrail"
        if (folder / ".git").exists():
            return None
    return None


def _table(body: object, where: str) -> Conventions:
    if not isinstance(body, dict):
        raise InvalidArgumentError(f"{where} must be a table")
    unknown = sorted(set(body) - _KEYS)
    if unknown:
        raise InvalidArgumentError(
            f"{where}: unknown key(s) {', '.join(unknown)}; known: "
            f"required_tags, name_pattern, on_violation"
        )
    tags = body.get("required_tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
        raise InvalidArgumentError(f"{where}.required_tags must be a list of tag names")
    pattern = body.get("name_pattern")
    if pattern is not None:
        if not isinstance(pattern, str):
            raise InvalidArgumentError(f"{where}.name_pattern must be a string")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise InvalidArgumentError(
                f"{where}.name_pattern {pattern!r} is not a regular expression: {exc}"
            ) from None
    mode = body.get("on_violation", "error")
    if mode not in ("error", "warn"):
        raise InvalidArgumentError(f"{where}.on_violation must be 'error' or 'warn'")
    return Conventions(tuple(tags), pattern, mode)


def load_conventions(folder: Path | None, project: str) -> Conventions:
    """The conventions ``folder/config.toml`` sets for ``project`` (none: no rules).

    Raises:
        InvalidArgumentError: the file is not TOML, or a key is malformed (named).
    """
    if folder is None:
        return Conventions()
    path = folder / "config.toml"
    try:
        doc: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Conventions()
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InvalidArgumentError(f"{path}: not a valid TOML file ({exc})") from None
    raw = doc.get("conventions")
    if raw is None:
        return Conventions()
    general = _table(raw, f"{path}: [conventions]")
    projects = raw.get("projects", {})
    if not isinstance(projects, dict):
        raise InvalidArgumentError(f"{path}: [conventions.projects] must be a table")
    own = projects.get(project)
    if own is None:
        return general
    specific = _table(own, f"{path}: [conventions.projects.{project}]")
    return Conventions(
        specific.required_tags if "required_tags" in own else general.required_tags,
        specific.name_pattern if "name_pattern" in own else general.name_pattern,
        specific.on_violation if "on_violation" in own else general.on_violation,
    )


def check_run(project: str, name: str, tags: Mapping[str, str], start: Path) -> None:
    """Check a new run against the conventions found from ``start``.

    Raises:
        InvalidArgumentError: conventions broken and ``on_violation = "error"`` (all listed).
    """
    folder = config_dir(start)
    if folder is None:
        return
    rules = load_conventions(folder, project)
    problems = [
        f"tag {t!r} is required (init(tags={{{t!r}: ...}}))"
        for t in rules.required_tags
        if not str(tags.get(t, "")).strip()
    ]
    if rules.name_pattern is not None and re.fullmatch(rules.name_pattern, name) is None:
        problems.append(f"name {name!r} does not match {rules.name_pattern!r}")
    if not problems:
        return
    where = folder / "config.toml"
    if rules.on_violation == "warn":
        for p in problems:
            log.warning("mltrail: run of project %r: %s (conventions in %s)", project, p, where)
        return
    listed = "".join(f"\n  - {p}" for p in problems)
    raise InvalidArgumentError(
        f"a run of project {project!r} breaks the conventions in {where}:{listed}"
    )
