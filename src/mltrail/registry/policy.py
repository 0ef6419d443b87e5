"""Registry policies: rules a model version must meet before a protected alias points at it.

Written in the committed ``.mltrail/config.toml`` (and, per model, in its tag
``mltrail.policy`` as JSON, which a server enforces for every client)::

    [registry.aliases.production]
    require_card = ["intended_use", "training_data", "evaluation_results", "limitations"]
    require_finished_run = true
    require_reproduced = true          # a `mltrail reproduce` verdict identical/within-tolerance
    metrics = ["val/auc >= 0.9"]       # the source run's last value
    admin_only = true                  # on a server: only admin tokens move it

``require_card = true`` means every section of :data:`~mltrail.registry.cards.SECTIONS`.
:func:`unmet_rules` returns one line per unmet rule (all of them, never just the first); a
move is refused with :class:`~mltrail.errors.PolicyViolationError` listing them unless an
admin overrides it with a reason, which the history records with the rules overridden.
"""

from __future__ import annotations

import json
import math
import operator
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mltrail.errors import InvalidArgumentError, NotFoundError, PolicyViolationError
from mltrail.registry.cards import SECTIONS, missing_sections

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from mltrail.registry.base import ModelRegistry
    from mltrail.registry.records import ModelVersion
    from mltrail.store.base import TrackingStore

__all__ = [
    "POLICY_TAG",
    "AliasRule",
    "guarded_set_alias",
    "Policy",
    "load_policy",
    "model_policy",
    "parse_policy",
    "refuse",
    "unmet_rules",
]

POLICY_TAG = "mltrail.policy"
VERDICT_TAG = "mltrail.verdict"
REPRODUCTION_TAG = "reproduction-of"
_OK_VERDICTS = ("identical", "within-tolerance")
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
}
_METRIC = re.compile(r"^\s*(?:metrics\.)?(\S+?)\s*(>=|<=|==|>|<)\s*(-?[0-9.eE+-]+)\s*$")
_KEYS = {"require_card", "require_finished_run", "require_reproduced", "metrics", "admin_only"}


@dataclass(frozen=True, slots=True)
class AliasRule:
    """What one protected alias requires."""

    alias: str
    card_sections: tuple[str, ...] = ()
    finished_run: bool = False
    reproduced: bool = False
    metrics: tuple[tuple[str, str, float], ...] = ()
    admin_only: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "require_card": list(self.card_sections),
            "require_finished_run": self.finished_run,
            "require_reproduced": self.reproduced,
            "metrics": [f"{k} {op} {v:g}" for k, op, v in self.metrics],
            "admin_only": self.admin_only,
        }


@dataclass(frozen=True, slots=True)
class Policy:
    """Rules per protected alias (an alias without rules is free to move)."""

    aliases: dict[str, AliasRule] = field(default_factory=dict)

    def merged(self, other: Policy) -> Policy:
        """Both policies' rules; for an alias in both, every rule of each."""
        out = dict(self.aliases)
        for name, rule in other.aliases.items():
            mine = out.get(name)
            if mine is None:
                out[name] = rule
                continue
            out[name] = AliasRule(
                name,
                tuple(dict.fromkeys(mine.card_sections + rule.card_sections)),
                mine.finished_run or rule.finished_run,
                mine.reproduced or rule.reproduced,
                mine.metrics + rule.metrics,
                mine.admin_only or rule.admin_only,
            )
        return Policy(out)


def _rule(alias: str, body: object, where: str) -> AliasRule:
    if not isinstance(body, dict):
        raise InvalidArgumentError(f"{where}: [registry.aliases.{alias}] must be a table")
    unknown = sorted(set(body) - _KEYS)
    if unknown:
        raise InvalidArgumentError(
            f"{where}: registry.aliases.{alias}: unknown key(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(_KEYS))}"
        )
    card = body.get("require_card", False)
    if card is True:
        sections: tuple[str, ...] = tuple(SECTIONS)
    elif card is False:
        sections = ()
    elif isinstance(card, list) and all(isinstance(s, str) and s in SECTIONS for s in card):
        sections = tuple(card)
    else:
        raise InvalidArgumentError(
            f"{where}: registry.aliases.{alias}.require_card must be true or a list of "
            f"sections ({', '.join(SECTIONS)})"
        )
    metrics = []
    raw = body.get("metrics", [])
    if not isinstance(raw, list):
        raise InvalidArgumentError(f"{where}: registry.aliases.{alias}.metrics must be a list")
    for text in raw:
        m = _METRIC.match(text) if isinstance(text, str) else None
        try:
            threshold = float(m[3]) if m else math.nan
        except ValueError:
            threshold = math.nan
        if m is None or not math.isfinite(threshold):
            raise InvalidArgumentError(
                f"{where}: registry.aliases.{alias}.metrics: {text!r} is not "
                "'KEY >= NUMBER' (or <=, >, <, ==)"
            )
        metrics.append((m[1], m[2], threshold))
    flags = {}
    for key in ("require_finished_run", "require_reproduced", "admin_only"):
        value = body.get(key, False)
        if not isinstance(value, bool):
            raise InvalidArgumentError(f"{where}: registry.aliases.{alias}.{key} must be a bool")
        flags[key] = value
    return AliasRule(
        alias,
        sections,
        flags["require_finished_run"],
        flags["require_reproduced"],
        tuple(metrics),
        flags["admin_only"],
    )


def parse_policy(doc: object, where: str = "policy") -> Policy:
    """The policy in a ``[registry]`` table (``{"aliases": {NAME: {...}}}``).

    Raises:
        InvalidArgumentError: naming the file, the key and what it must be.
    """
    if doc is None:
        return Policy()
    if not isinstance(doc, dict):
        raise InvalidArgumentError(f"{where}: [registry] must be a table")
    aliases = doc.get("aliases", {})
    if not isinstance(aliases, dict):
        raise InvalidArgumentError(f"{where}: [registry.aliases] must be a table")
    return Policy({name: _rule(name, body, where) for name, body in aliases.items()})


def load_policy(config_dir: Path | None) -> Policy:
    """The ``[registry]`` policy of ``config_dir/config.toml`` (none: an empty policy).

    Raises:
        InvalidArgumentError: the file is not TOML or the policy is malformed.
    """
    if config_dir is None:
        return Policy()
    import tomllib

    path = config_dir / "config.toml"
    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError:
        return Policy()
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidArgumentError(f"{path}: not a valid TOML file ({exc})") from None
    return parse_policy(doc.get("registry"), str(path))


def model_policy(tags: dict[str, str]) -> Policy:
    """The policy a model carries in its ``mltrail.policy`` tag (JSON of a [registry] table).

    Raises:
        InvalidArgumentError: the tag is not such JSON.
    """
    raw = tags.get(POLICY_TAG)
    if not raw:
        return Policy()
    try:
        doc = json.loads(raw)
    except ValueError:
        raise InvalidArgumentError(f"model tag {POLICY_TAG} is not JSON") from None
    return parse_policy(doc, f"model tag {POLICY_TAG}")


def _reproduced(store: TrackingStore, project: str, run_id: str) -> list[str]:
    """The verdicts of the recorded reproductions of ``run_id``."""
    page = store.search_runs(
        project=project, filter=f"tags.`{REPRODUCTION_TAG}` = '{run_id}'", limit=100
    )
    return [r.tags.get(VERDICT_TAG, "") for r in page.runs]


def unmet_rules(rule: AliasRule, version: ModelVersion, store: TrackingStore) -> list[str]:
    """Every rule of ``rule`` that ``version`` breaks, one line each (empty: allowed)."""
    out: list[str] = []
    missing = missing_sections(version.card, rule.card_sections)
    if missing:
        out.append(f"require_card: the model card lacks {', '.join(missing)}")
    run = None
    needs_run = rule.finished_run or rule.reproduced or rule.metrics
    if needs_run and version.run_id is None:
        out.append("the version has no source run (required by this alias's rules)")
    elif needs_run:
        try:
            run = store.get_run(str(version.run_id))
        except NotFoundError:
            out.append(f"source run {version.run_id} is not in the store")
    if run is not None and rule.finished_run and run.status.value != "finished":
        out.append(f"require_finished_run: source run {run.run_id} is {run.status.value}")
    if run is not None and rule.reproduced:
        verdicts = _reproduced(store, run.project, run.run_id)
        if not any(v in _OK_VERDICTS for v in verdicts):
            seen = ", ".join(v or "no verdict" for v in verdicts) or "none recorded"
            out.append(
                f"require_reproduced: no reproduction of run {run.run_id} is identical or "
                f"within-tolerance (reproductions: {seen}); run `mltrail reproduce {run.run_id}`"
            )
    metrics = run.metrics if run is not None else {}
    for key, op, threshold in rule.metrics if run is not None else ():
        m = metrics.get(key)
        value = None if m is None else m.last
        if value is None or not math.isfinite(value) or not _OPS[op](value, threshold):
            shown = "not logged" if m is None else f"{value}"
            out.append(f"metrics: {key} {op} {threshold:g} is not met (source run: {shown})")
    return out


def refuse(name: str, alias: str, version: int, unmet: list[str]) -> PolicyViolationError:
    """The error for a refused move: it lists every unmet rule."""
    lines = "".join(f"\n  - {u}" for u in unmet)
    return PolicyViolationError(
        f"alias {alias!r} of model {name!r} is protected; v{version} does not meet "
        f"{len(unmet)} rule(s):{lines}\n(an admin may override with a reason)"
    )


def guarded_set_alias(
    registry: ModelRegistry,
    store: TrackingStore,
    policy: Policy,
    project: str,
    name: str,
    alias: str,
    version: int,
    *,
    expected_version: int | None = None,
    actor: str = "",
    reason: str = "",
    override_reason: str | None = None,
    override: dict[str, Any] | None = None,
    is_admin: bool = True,
) -> ModelVersion:
    """Move ``alias`` after checking ``policy`` and the model's own policy tag.

    Unmet rules refuse the move (listing all of them) unless ``override_reason`` is given by
    an admin: then the move is made and its history event records the rules overridden and
    the reason. ``override`` is an override already decided by a client (its own rules).

    Raises:
        PolicyViolationError: rules unmet and no override.
        PermissionDeniedError: an override, or an ``admin_only`` alias, by a non-admin.
        InvalidArgumentError: an empty override reason.
    """
    from mltrail.errors import PermissionDeniedError

    if override_reason is not None and not override_reason.strip():
        raise InvalidArgumentError("override reason must not be empty: say why")
    if (override_reason is not None or override is not None) and not is_admin:
        raise PermissionDeniedError("overriding a registry policy needs an admin token")
    model = registry.get_model(project, name)
    rule = policy.merged(model_policy(model.tags)).aliases.get(alias)
    record = dict(override) if override is not None else None
    if rule is not None:
        if rule.admin_only and not is_admin:
            raise PermissionDeniedError(
                f"alias {alias!r} of model {name!r} may only be moved with an admin token"
            )
        unmet = unmet_rules(rule, registry.get_version(project, name, version), store)
        if unmet and override_reason is None:
            raise refuse(name, alias, version, unmet)
        if unmet:
            record = record or {}
            record["unmet"] = [*record.get("unmet", []), *unmet]
    if record is not None and override_reason is not None:
        record["reason"] = override_reason
        reason = reason or override_reason
    return registry.set_alias(
        project,
        name,
        alias,
        version,
        expected_version=expected_version,
        actor=actor,
        reason=reason,
        override=record,
    )
