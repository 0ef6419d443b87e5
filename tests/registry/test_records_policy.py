"""Model references, names and policy files: every malformed input is refused naming the
field and the rule; policies merge; cards round-trip through Markdown."""

from __future__ import annotations

import pytest

from mltrail.errors import InvalidArgumentError
from mltrail.registry.cards import card_from_markdown, merge_sections, missing_sections
from mltrail.registry.policy import Policy, model_policy, parse_policy
from mltrail.registry.records import (
    ModelRef,
    check_card,
    check_model_alias,
    check_tags,
    parse_model_ref,
)


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        ("models:/fraud", ModelRef("fraud")),
        ("models:/fraud@prod", ModelRef("fraud", alias="prod")),
        ("models:/fraud@latest", ModelRef("fraud")),
        ("models:/fraud/3", ModelRef("fraud", version=3)),
        ("models:/team/fraud", ModelRef("fraud", project="team")),
        ("models:/team/fraud@prod", ModelRef("fraud", project="team", alias="prod")),
        ("models:/team/fraud/12", ModelRef("fraud", project="team", version=12)),
    ],
)
def test_model_refs_parse(text: str, ref: ModelRef) -> None:
    """Every documented form parses to what it names, and prints back the same way."""
    assert parse_model_ref(text) == ref
    if "latest" not in text:
        assert str(ref) == text


@pytest.mark.parametrize(
    "text",
    ["fraud", "models:/", "models:/a/b/c/d", "models:/fraud@", "models:/fraud@a/b", "models:/x@3"],
)
def test_bad_model_refs(text: str) -> None:
    """Malformed references are refused, naming the accepted forms or the broken rule."""
    with pytest.raises(InvalidArgumentError, match="model"):
        parse_model_ref(text)


def test_names_tags_cards_limits() -> None:
    """Aliases, tags and cards are checked with the field and the limit in the message."""
    with pytest.raises(InvalidArgumentError, match="model alias.*limit is 64"):
        check_model_alias("a" * 65)
    with pytest.raises(InvalidArgumentError, match="model tags: 101 given; the limit is 100"):
        check_tags({f"k{i}": "v" for i in range(101)})
    with pytest.raises(InvalidArgumentError, match="model tag 'k'.*limit is 5000"):
        check_tags({"k": "v" * 5001})
    with pytest.raises(InvalidArgumentError, match="model card is not plain JSON"):
        check_card({"x": float("nan")})
    assert check_tags({"b": "1", "a": "2"}) == {"a": "2", "b": "1"}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"aliases": {"prod": {"require_card": ["colour"]}}}, "require_card must be true or"),
        ({"aliases": {"prod": {"metrics": ["auc high"]}}}, "metrics: 'auc high' is not"),
        ({"aliases": {"prod": {"metrics": ["auc >= inf"]}}}, "metrics: 'auc >= inf' is not"),
        ({"aliases": {"prod": {"admin_only": "yes"}}}, "admin_only must be a bool"),
        ({"aliases": {"prod": {"reviewers": 2}}}, "unknown key\\(s\\) reviewers"),
        ({"aliases": {"prod": 3}}, "must be a table"),
        ({"aliases": []}, r"\[registry.aliases\] must be a table"),
    ],
)
def test_bad_policies_name_the_key(doc: object, message: str) -> None:
    """A malformed policy names the alias, the key and what it must be."""
    with pytest.raises(InvalidArgumentError, match=message):
        parse_policy(doc, "config.toml")


def test_policies_merge_every_rule() -> None:
    """The config's and the model's rules for one alias both apply."""
    a = parse_policy({"aliases": {"prod": {"require_card": ["intended_use"]}}})
    b = model_policy(
        {"mltrail.policy": '{"aliases": {"prod": {"metrics": ["auc >= 0.9"]}, "x": {}}}'}
    )
    rule = a.merged(b).aliases["prod"]
    assert rule.card_sections == ("intended_use",)
    assert rule.metrics == (("auc", ">=", 0.9),)
    assert set(a.merged(b).aliases) == {"prod", "x"}
    assert Policy().merged(Policy()).aliases == {}
    with pytest.raises(InvalidArgumentError, match="mltrail.policy is not JSON"):
        model_policy({"mltrail.policy": "{nope"})


def test_card_sections_and_markdown() -> None:
    """Unknown sections are refused; Markdown headings map to sections; empties are missing."""
    with pytest.raises(InvalidArgumentError, match="unknown section\\(s\\) colour"):
        merge_sections({}, {"colour": "red"})
    card = merge_sections({"intended_use": "a"}, {"limitations": "b", "intended_use": None})
    assert card == {"limitations": "b"}
    md = (
        "## Intended use\n\nFraud triage\n\n## limitations\n\n  \n"
        "## Evaluation data\n\n_not provided_\n"
    )
    assert card_from_markdown(md) == {"intended_use": "Fraud triage"}
    with pytest.raises(InvalidArgumentError, match="heading 'Colour' names no section"):
        card_from_markdown("## Colour\nred\n")
    assert missing_sections(
        {"intended_use": " ", "limitations": ["x"]}, ("intended_use", "limitations")
    ) == ["intended_use"]
