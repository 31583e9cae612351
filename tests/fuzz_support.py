"""What the fuzz tests share: the hypothesis profile (a fixed budget; derandomized in CI),
the recorded agent output they start from (tests/fixtures/agents/), the mutations and
generated lines they feed, one parser per executor, and the checks every output passes
(strict JSON, UTF-8, nothing a terminal would act on).

Profiles: ``fuzz-ci`` (derandomized: the same examples on every run, so CI time and results
are fixed) when ``CI`` is set or ``HYPOTHESIS_PROFILE=fuzz-ci``; ``fuzz-dev`` (random
examples, same budget) otherwise. No example database is written into the checkout.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from aura.contracts import ENTRY_KINDS
from aura.executors.base import LineParser, RunRequest
from aura.executors.events import aura_own
from aura.executors.registry import load, names

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "agents"

_COMMON = {"deadline": None, "database": None, "print_blob": True,
           "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.filter_too_much]}
settings.register_profile("fuzz-ci", derandomize=True, **_COMMON)  # type: ignore[arg-type]
settings.register_profile("fuzz-dev", **_COMMON)  # type: ignore[arg-type]
PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or ("fuzz-ci" if os.environ.get("CI")
                                                   else "fuzz-dev")


def budget(examples: int) -> settings:
    """The fuzz profile with ``examples`` examples for one test."""
    return settings(settings.get_profile(PROFILE), max_examples=examples)


# -- the recorded output ---------------------------------------------------------------------

def recorded_lines(prefix: str) -> list[str]:
    """Every stdout line of the recordings of one agent (``claude``, ``codex``, …)."""
    lines: list[str] = []
    for path in sorted(FIXTURES.glob(f"{prefix}-*.stdout.jsonl")):
        lines += path.read_text().splitlines()
    return lines


def recorded_updates() -> list[dict[str, Any]]:
    """The params of every ACP ``session/update`` the recorded agents sent."""
    updates = []
    for path in sorted(FIXTURES.glob("*.exchange.jsonl")):
        for line in path.read_text().splitlines():
            msg = json.loads(line).get("msg") or {}
            if msg.get("method") == "session/update":
                updates.append(msg["params"])
    return updates


# Which recordings seed which executor's parser (cursor-agent and amp speak claude's
# stream-json and have no recordings of their own; the custom executor gets all of them,
# plus aura-native entries).
SEEDS = {"claude": "claude", "amp": "claude", "cursor-agent": "claude", "droid": "droid",
         "codex": "codex", "opencode": "opencode", "copilot": "copilot"}
NATIVE = ['{"kind":"assistant_message","text":"hi"}',
          '{"kind":"tool_call","id":"1","tool":"sh","action":"command","target":"ls",'
          '"status":"ok","output":"x"}',
          '{"kind":"usage","usage":{"input_tokens":3,"output_tokens":4,"cost_usd":0.5}}',
          '{"kind":"system","text":"note","data":{"type":"note"}}',
          '{"kind":"state","from":"coding_initial","to":"done","reason":"pipeline finished"}',
          '{"kind":"summary","state":"done","exit_code":0}', "plain text"]


def line_parsers() -> dict[str, Callable[[], LineParser]]:
    """A fresh parser of every executor that reads an agent's stdout lines, by name, as
    the executor itself builds it."""
    request = RunRequest(prompt="p", cwd="/tmp/work", session_id="s", execution_id="e",
                         base_command="agent")
    out: dict[str, Callable[[], LineParser]] = {}
    for name in names():
        executor = load(name)()
        build = getattr(executor, "parser", None)
        if build is not None:
            out[name] = lambda build=build: build(request)
    return out


def seed_lines(executor: str) -> list[str]:
    if executor in SEEDS:
        return recorded_lines(SEEDS[executor])
    return NATIVE + [line for prefix in sorted(set(SEEDS.values()))
                     for line in recorded_lines(prefix)[:20]]


# -- hostile values and mutations ----------------------------------------------------------

# Stand-ins replaced in the serialized text: a value nested far deeper than any stack, and
# numbers JSON cannot hold.
DEEP = "\x00deep\x00"
HUGE = "\x00huge\x00"
TERMINAL_ATTACK = ("\x1b]52;c;aGVsbG8=\x07\x1b]0;PWNED\x07\x1b[2J\x1b[H\x1bc"
                   "\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\\x9b2J\r\x08\u202e")
_HOSTILE = st.one_of(
    st.sampled_from([["x"], {"a": 1}, [], {}, None, True, 0, -1, 2**70, float("inf"),
                     float("-inf"), float("nan"), 1e308, "\ud800", "\udfff x", TERMINAL_ATTACK,
                     "state", "summary", "system", "raw", "usage", "tool_call", "review",
                     "changes", DEEP, HUGE, "", "{", "\u0000"]),
    st.text(max_size=20), st.integers(), st.floats(),
    st.dictionaries(st.sampled_from(["type", "kind", "text", "data", "usage", "id"]),
                    st.sampled_from([["x"], "state", float("nan"), DEEP, {"type": "review"}]),
                    max_size=3),
)
# A fresh copy every time: mutations go on inside what was drawn, and the examples above
# are shared objects.
HOSTILE = _HOSTILE.map(copy.deepcopy)


def _slots(value: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) in a JSON value, walked without recursion."""
    slots: list[tuple[Any, Any]] = []
    stack = [value]
    while stack:
        item = stack.pop()
        pairs = item.items() if isinstance(item, dict) else enumerate(item) \
            if isinstance(item, list) else ()
        for key, child in pairs:
            slots.append((item, key))
            stack.append(child)
    return slots


def dumps(value: Any) -> str:
    """``value`` as an agent might print it: Python's json, which writes NaN and
    Infinity; the stand-ins become deep nesting and 1e400."""
    text = json.dumps(value, ensure_ascii=False)
    depth = 1500
    text = text.replace(json.dumps(DEEP), '{"a":' * depth + "[1]" + "}" * depth)
    return text.replace(json.dumps(HUGE), "1e400")


@st.composite
def mutated_line(draw: st.DrawFn, seeds: list[str]) -> str:
    """A recorded line, then: a value somewhere replaced by a hostile one (or a key
    dropped, or the event type made hostile), and maybe the text cut or spliced."""
    line = draw(st.sampled_from(seeds))
    try:
        obj = json.loads(line)
    except ValueError:
        obj = None
    if isinstance(obj, dict):
        slots = _slots(obj)
        for _ in range(draw(st.integers(1, 3))):
            how = draw(st.sampled_from(["replace", "replace", "type", "kind", "drop"]))
            if how in ("type", "kind"):
                obj[how] = draw(HOSTILE)
            elif slots:
                container, key = draw(st.sampled_from(slots))
                if how == "drop" and isinstance(container, dict):
                    container.pop(key, None)
                elif how == "replace" and (isinstance(container, dict) or
                                           key < len(container)):
                    container[key] = draw(HOSTILE)
                slots = _slots(obj)
        line = dumps(obj)
    edit = draw(st.sampled_from(["none", "none", "none", "cut", "splice", "prefix"]))
    if edit == "cut" and line:
        line = line[:draw(st.integers(0, len(line) - 1))]
    elif edit == "splice":
        at = draw(st.integers(0, len(line)))
        line = line[:at] + draw(st.sampled_from(["\x1b]0;x\x07", "\n", "\r", "\"", "}",
                                                 "\\u", "\ud800", "NaN"])) + line[at:]
    elif edit == "prefix":
        line = draw(st.sampled_from(['{"kind":"state",', '{"type":["x"],', "[", "\x1b[2J"])) \
            + line[1:]
    return line


def generated_line() -> st.SearchStrategy[str]:
    """Lines made from nothing: any text, any JSON object, deep nesting."""
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
            st.sampled_from(["type", "kind", "text", "subtype", "item", "data", "part",
                             "usage", "message", "content"]), inner, max_size=4),
        max_leaves=12)
    return st.one_of(
        st.text(max_size=60),
        st.dictionaries(st.sampled_from(["type", "kind", "text", "item", "data", "usage"]),
                        json_values | HOSTILE, max_size=4).map(dumps),
        st.integers(2, 3000).map(lambda n: '{"type":' + "[" * n + "]" * n + "}"),
        st.integers(2, 3000).map(lambda n: '{"kind":"system","data":' + '{"a":' * n + "1"
                                 + "}" * n + "}"),
    )


# -- what every output must be -------------------------------------------------------------

_AURA_SGR = re.compile(r"\x1b\[[0-9;]*m")
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")


def _no_constant(name: str) -> Any:
    raise AssertionError(f"{name} in aura's JSON")


def strict_json(text: str) -> Any:
    """``text`` decoded by a strict reader (no NaN/Infinity), after checking it is UTF-8
    safe; AssertionError otherwise."""
    text.encode("utf-8")
    value = json.loads(text, parse_constant=_no_constant)
    return value


def terminal_safe(text: str, painted: bool) -> None:
    """Nothing in ``text`` that a terminal would act on (aura's own colours aside when
    ``painted``)."""
    if painted:
        text = _AURA_SGR.sub("", text)
    found = _UNSAFE.search(text)
    assert found is None, f"{found.group()!r} would reach the terminal in {text[:200]!r}"
    text.encode("utf-8")


def check_agent_entry(entry: Any) -> None:
    """An entry a parser made from agent output: a dict of a known kind, none of aura's
    own kinds."""
    assert isinstance(entry, dict), entry
    assert type(entry.get("kind")) is str and entry["kind"] in ENTRY_KINDS, entry
    assert not aura_own(entry), entry
