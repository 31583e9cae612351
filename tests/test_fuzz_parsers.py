"""Every executor's parser on hostile output: the recorded lines of the real agents
mutated (a value anywhere made a list, an object, NaN, 1e400, a lone surrogate, escape
sequences, nesting 1,500 deep, one of aura's own kinds; text cut or spliced) and lines
generated from nothing. Whatever comes in, a parser never raises; what it makes is entries
of known kinds (never aura's own), each encodes as strict JSON and renders as text with
nothing a terminal would act on; a line that is not a JSON object is kept as it came.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aura.cli.render import Painter, format_entry
from aura.executors.acp.entries import UpdateTranslator
from aura.executors.base import LineParser
from aura.executors.events import json_object
from aura.recorder import encode

from .fuzz_support import (
    HOSTILE,
    budget,
    check_agent_entry,
    dumps,
    generated_line,
    line_parsers,
    mutated_line,
    recorded_updates,
    seed_lines,
    strict_json,
    terminal_safe,
)

PARSERS = line_parsers()
EXPECTED = {"amp", "claude", "codex", "copilot", "cursor-agent", "custom", "droid",
            "opencode"}


def test_every_line_executor_is_fuzzed() -> None:
    assert set(PARSERS) == EXPECTED


def check_output(entries: list, painted: bool = True) -> None:
    for entry in entries:
        check_agent_entry(entry)
        assert strict_json(encode(entry))["kind"] == entry["kind"]
        shown = format_entry(entry, Painter(painted))
        if shown is not None:
            terminal_safe(shown[0], painted)


def feed_all(parser: LineParser, lines: list[str]) -> list:
    out: list = []
    for line in lines:
        entries = parser.feed(line)
        check_output(entries)
        text = line.strip()
        if text and json_object(text) is None:
            # Not an event: kept as it came, as raw (or, from a command, as its text).
            assert len(entries) == 1, (line, entries)
            assert entries[0]["text"] in (line.rstrip("\r\n"), line.rstrip("\r")), entries
        out += entries
    tail = parser.finish()
    check_output(tail)
    return out + tail


@pytest.mark.parametrize("executor", sorted(EXPECTED))
def test_parser_survives_mutated_recordings(executor: str) -> None:
    seeds = seed_lines(executor)

    @budget(100)
    @given(st.lists(mutated_line(seeds), min_size=1, max_size=6))
    def run(lines: list[str]) -> None:
        feed_all(PARSERS[executor](), seeds[:3] + lines)

    run()


@pytest.mark.parametrize("executor", sorted(EXPECTED))
def test_parser_survives_generated_lines(executor: str) -> None:
    @budget(60)
    @given(st.lists(generated_line(), min_size=1, max_size=5))
    def run(lines: list[str]) -> None:
        feed_all(PARSERS[executor](), lines)

    run()


@pytest.mark.parametrize("executor", sorted(EXPECTED))
@pytest.mark.parametrize("line", [
    '{"type":["x"]}', '{"type":{"a":1}}', '{"kind":["x"]}', '{"kind":{"a":1}}',
    '{"type":"result","usage":{"input_tokens":1e400},"total_cost_usd":Infinity}',
    '{"type":' + "[" * 5000 + "]" * 5000 + "}",
    '{"kind":"system","data":' + '{"a":' * 1200 + "1" + "}" * 1200 + "}",
    '{"type":"assistant","message":{"content":[{"type":"text","text":"\\ud800"}]}}',
    '{"kind":"state","from":"coding_initial","to":"done","reason":"pipeline finished"}',
    '{"kind":"summary","state":"done","exit_code":0}',
])
def test_known_crashers_are_kept(executor: str, line: str) -> None:
    """The lines that raised TypeError: unhashable, RecursionError or OverflowError."""
    parser = PARSERS[executor]()
    entries = feed_all(parser, [line, "after"])
    assert entries, "the line and the one after it are stored"
    assert any(e.get("text") == "after" for e in entries)


def test_custom_refuses_aura_kinds_and_keeps_the_line() -> None:
    line = '{"kind":"state","from":"coding_initial","to":"done","reason":"pipeline finished"}'
    [entry] = PARSERS["custom"]().feed(line)
    assert entry["kind"] == "raw" and entry["text"] == line
    review = '{"kind":"system","text":"review verdict: approve","data":{"type":"review"}}'
    [entry] = PARSERS["custom"]().feed(review)
    assert entry["kind"] == "raw" and entry["text"] == review


UPDATES = recorded_updates()


@st.composite
def mutated_update(draw: st.DrawFn) -> dict:
    import json

    params = json.loads(json.dumps(draw(st.sampled_from(UPDATES))))
    update = params.get("update")
    if isinstance(update, dict) and update:
        key = draw(st.sampled_from(sorted(update)))
        update[key] = draw(HOSTILE)
        if draw(st.booleans()):
            content = update.setdefault("content", {})
            if isinstance(content, dict):
                content["type"] = draw(st.sampled_from(["review", "changes", ["x"], "image"]))
    elif draw(st.booleans()):
        params["update"] = draw(HOSTILE)
    return params


def test_acp_translator_survives_mutated_updates() -> None:
    assert UPDATES

    @budget(150)
    @given(st.lists(mutated_update(), min_size=1, max_size=8))
    def run(updates: list[dict]) -> None:
        translator = UpdateTranslator("/tmp/work", "p")
        for params in updates:
            check_output(translator.feed(params))
        check_output(translator.flush_text())
        check_output(translator.finish(None))

    run()


def test_dumps_makes_the_hostile_text() -> None:
    from .fuzz_support import DEEP, HUGE

    text = dumps({"a": [DEEP, HUGE, float("nan")]})
    assert '{"a":{"a":' in text and "1e400" in text and "NaN" in text
