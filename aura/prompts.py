"""Prompt templates per stage, pure: ``{{key}}`` placeholders, strictly checked.

A placeholder is ``{{name}}`` (spaces inside the braces allowed) where name is letters,
digits and ``_``. Rendering is one pass, so a value that itself contains ``{{…}}`` is
inserted as is, never expanded. An unknown name is a TemplateError naming it and the
names that are known. Other braces are plain text.

Keys aura provides: ``prompt`` (this turn's request), ``task`` (the session's first
prompt), ``branch``, ``repo``, ``workspace``, ``stage``, for review also ``diff`` and
``changes``, for a follow-up ``review`` (the last review's text, or empty), and every
``--var``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from aura.errors import TemplateError

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")

DEFAULTS: dict[str, str] = {
    "coding_initial": "{{prompt}}",
    "coding_follow_up": "{{review}}{{prompt}}",
    "review": (
        "You are reviewing changes another coding agent made for this task.\n\n"
        "Task:\n{{task}}\n\n"
        "Branch: {{branch}}\n"
        "What changed:\n{{changes}}\n\n"
        "Diff:\n{{diff}}\n\n"
        "Check the diff for correctness, completeness and anything that would break. "
        "Do not modify any files. Finish with exactly one line, either\n"
        "VERDICT: approve\nor\nVERDICT: request_changes"
    ),
}


def placeholders(template: str) -> list[str]:
    """The names used in ``template``, in order of first use."""
    seen: list[str] = []
    for match in PLACEHOLDER.finditer(template):
        if match.group(1) not in seen:
            seen.append(match.group(1))
    return seen


def render(template: str, values: Mapping[str, str], *, name: str = "prompt") -> str:
    """Fill every ``{{key}}``; an unknown key raises TemplateError naming it."""
    missing = [key for key in placeholders(template) if key not in values]
    if missing:
        known = ", ".join(sorted(values)) or "none"
        raise TemplateError(f"unknown placeholder {{{{{missing[0]}}}}} in the {name} "
                            f"template (known: {known})")
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def template_for(stage: str, configured: Mapping[str, str]) -> str:
    """The configured template of ``stage`` (``[templates]`` in .aura.toml), else the
    built-in default."""
    key = {"coding_initial": "initial", "coding_follow_up": "follow_up"}.get(stage, stage)
    value = configured.get(key)
    return value if isinstance(value, str) else DEFAULTS[stage]


def review_note(text: str) -> str:
    """How the last review is handed to a follow-up by the default template."""
    return f"A reviewer looked at your last changes and said:\n{text.strip()}\n\n" \
        if text.strip() else ""


VERDICT = re.compile(r"VERDICT:\s*\**\s*(approve|request_changes)", re.IGNORECASE)


def verdict(text: str) -> str | None:
    """``approve`` or ``request_changes`` from a reviewer's answer (the last one given),
    or None when it gave none."""
    found = VERDICT.findall(text)
    return found[-1].lower() if found else None
