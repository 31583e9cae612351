"""Prompt templates: strict placeholders, defaults, verdicts."""

from __future__ import annotations

import pytest

from aura import prompts
from aura.errors import UsageError


def test_render_fills_placeholders_with_or_without_spaces() -> None:
    text = prompts.render("Do {{prompt}} on {{ branch }}.", {"prompt": "x", "branch": "b"})
    assert text == "Do x on b."


def test_unknown_key_names_it_and_the_known_ones() -> None:
    with pytest.raises(prompts.TemplateError) as info:
        prompts.render("{{prompt}} {{ticket}}", {"prompt": "x", "branch": "b"},
                       name="review")
    message = str(info.value)
    assert "{{ticket}}" in message and "review template" in message
    assert "known: branch, prompt" in message
    assert isinstance(info.value, UsageError)


def test_values_are_not_expanded_again_and_other_braces_stay() -> None:
    out = prompts.render("{{prompt}} {x} {{ 1bad }}", {"prompt": "{{branch}}"})
    assert out == "{{branch}} {x} {{ 1bad }}"
    assert prompts.placeholders("{{a}}{{b}}{{a}}") == ["a", "b"]


def test_templates_from_config_override_the_defaults() -> None:
    assert prompts.template_for("coding_initial", {}) == "{{prompt}}"
    assert prompts.template_for("coding_follow_up", {"follow_up": "F {{prompt}}"}) == \
        "F {{prompt}}"
    review = prompts.template_for("review", {})
    assert {"task", "diff", "changes", "branch"} <= set(prompts.placeholders(review))


def test_verdict_takes_the_last_one_given() -> None:
    assert prompts.verdict("VERDICT: request_changes\n…\nverdict: **APPROVE**") == "approve"
    assert prompts.verdict("VERDICT: approve\nVERDICT: request_changes") == "request_changes"
    assert prompts.verdict("looks fine") is None
    assert prompts.review_note("") == ""
    assert prompts.review_note(" ok ").startswith("A reviewer looked")
