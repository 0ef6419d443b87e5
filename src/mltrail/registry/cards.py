"""Model cards (Mitchell et al., 2019, "Model Cards for Model Reporting"): the sections, the
parts filled from the source run, completeness, and export as Markdown, HTML and JSON.

A card is a JSON object stored with its model version (each change a new revision, see
:mod:`mltrail.registry.base`); its keys are the section names of :data:`SECTIONS`. A section
is text, a list or an object; ``training_data`` and ``evaluation_results`` are filled from
the source run (its data inputs with their digests, its metrics) by :func:`autofill`.
"""

from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING, Any

from mltrail.errors import InvalidArgumentError

if TYPE_CHECKING:
    from mltrail.entities import RunRecord
    from mltrail.registry.records import ModelVersion

__all__ = [
    "SECTIONS",
    "autofill",
    "card_from_markdown",
    "merge_sections",
    "missing_sections",
    "render",
]

#: section name -> title, in the paper's order
SECTIONS: dict[str, str] = {
    "model_details": "Model details",
    "intended_use": "Intended use",
    "out_of_scope_use": "Out-of-scope use",
    "training_data": "Training data",
    "evaluation_data": "Evaluation data",
    "evaluation_results": "Evaluation results",
    "ethical_considerations": "Ethical considerations",
    "limitations": "Caveats and limitations",
}
_TITLES = {title.lower(): key for key, title in SECTIONS.items()}
_MAX_METRICS = 200


def merge_sections(card: dict[str, Any], updates: dict[str, Any]) -> dict[str, Any]:
    """``card`` with ``updates`` applied (a None value removes a section).

    Raises:
        InvalidArgumentError: an unknown section (the message lists the known ones).
    """
    unknown = sorted(set(updates) - set(SECTIONS))
    if unknown:
        raise InvalidArgumentError(
            f"model card: unknown section(s) {', '.join(unknown)}; sections are "
            f"{', '.join(SECTIONS)}"
        )
    out = dict(card)
    for key, value in updates.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return {k: out[k] for k in SECTIONS if k in out}


def _empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list | dict):
        return not value
    return False


def missing_sections(card: dict[str, Any], required: list[str] | tuple[str, ...]) -> list[str]:
    """The sections of ``required`` that ``card`` leaves empty, in the paper's order."""
    return [s for s in required if _empty(card.get(s))]


def autofill(
    card: dict[str, Any],
    version: ModelVersion,
    run: RunRecord | None,
    data: list[dict[str, Any]],
) -> dict[str, Any]:
    """Fill the empty sections the record can tell: model details from the version,
    training data from the run's data inputs (``data``: path or name, digest, size), and
    evaluation results from the run's metrics (``system/`` ones left out)."""
    out = dict(card)
    if _empty(out.get("model_details")):
        details: dict[str, Any] = {
            "name": version.name,
            "version": version.version,
            "artifact": version.artifact,
            "digest": version.digest,
        }
        if run is not None:
            details.update(run_id=run.run_id, run_name=run.name, created_by=run.user)
        out["model_details"] = details
    if _empty(out.get("training_data")) and data:
        out["training_data"] = data
    if _empty(out.get("evaluation_results")) and run is not None:
        names = ", ".join(str(d.get("name") or d.get("path")) for d in data) or "not recorded"
        results = [
            {"metric": key, "value": m.last, "step": m.last_step, "dataset": names}
            for key, m in sorted(run.metrics.items())
            if not key.startswith("system/")
        ][:_MAX_METRICS]
        if results:
            out["evaluation_results"] = results
    return {k: out[k] for k in SECTIONS if k in out} | {
        k: v for k, v in out.items() if k not in SECTIONS
    }


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, sort_keys=True, default=str)


def _md_section(value: Any) -> str:
    if isinstance(value, list) and value and all(isinstance(x, dict) for x in value):
        keys = sorted({k for x in value for k in x})
        head = "| " + " | ".join(keys) + " |\n| " + " | ".join("---" for _ in keys) + " |\n"
        rows = "".join(
            "| " + " | ".join(str(x.get(k, "")).replace("|", "\\|") for k in keys) + " |\n"
            for x in value
        )
        return head + rows
    if isinstance(value, dict):
        return "".join(f"- **{k}**: {_text(v)}\n" for k, v in value.items())
    if isinstance(value, list):
        return "".join(f"- {_text(x)}\n" for x in value)
    return _text(value) + "\n"


def render(version: ModelVersion, fmt: str) -> str:
    """The version's card as ``md``, ``html`` or ``json`` (sections in the paper's order,
    empty ones marked "not provided").

    Raises:
        InvalidArgumentError: another format.
    """
    card = version.card
    title = f"Model card: {version.name} v{version.version}"
    if fmt == "json":
        doc = {
            "model": version.name,
            "project": version.project,
            "version": version.version,
            "digest": version.digest,
            "card_revision": version.card_revision,
            "sections": {k: card.get(k) for k in SECTIONS},
        }
        return json.dumps(doc, indent=2, sort_keys=False, default=str) + "\n"
    if fmt == "md":
        parts = [f"# {title}\n"]
        for key, heading in SECTIONS.items():
            body = "_not provided_\n" if _empty(card.get(key)) else _md_section(card[key])
            parts.append(f"\n## {heading}\n\n{body}")
        return "".join(parts)
    if fmt == "html":
        parts = [
            '<!doctype html>\n<html><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title></head><body>\n<h1>{html.escape(title)}</h1>\n"
        ]
        for key, heading in SECTIONS.items():
            value = card.get(key)
            body = (
                "<p><em>not provided</em></p>"
                if _empty(value)
                else f"<pre>{html.escape(_text(value))}</pre>"
            )
            parts.append(f'<section id="{key}"><h2>{html.escape(heading)}</h2>{body}</section>\n')
        parts.append("</body></html>\n")
        return "".join(parts)
    raise InvalidArgumentError(f"card format must be md, html or json, got {fmt!r}")


def card_from_markdown(text: str) -> dict[str, str]:
    """Sections from Markdown whose ``## Heading`` lines are section titles or names.

    Raises:
        InvalidArgumentError: a heading that names no section.
    """
    out: dict[str, list[str]] = {}
    current: str | None = None
    for line in text.splitlines():
        if line.startswith("## "):
            heading = line[3:].strip()
            key = _TITLES.get(heading.lower()) or (heading if heading in SECTIONS else None)
            if key is None:
                raise InvalidArgumentError(
                    f"model card: heading {heading!r} names no section; use one of "
                    f"{', '.join(SECTIONS.values())}"
                )
            current = key
            out[current] = []
        elif current is not None:
            out[current].append(line)
    return {
        k: "\n".join(v).strip()
        for k, v in out.items()
        if "\n".join(v).strip() not in ("", "_not provided_")
    }
