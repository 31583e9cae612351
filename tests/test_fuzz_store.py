"""Hostile entries through the recorder into a real SQLite file and back out through both
renderers: whatever a parser (or aura itself) hands the recorder, every entry is stored,
the stream printers write nothing a terminal would act on, `session show --json`'s data is
strict JSON, and `session show`'s text renders every entry. Stored rows that cannot be
read back (written by a broken writer) are shown as raw entries rather than making the
session unshowable.
"""

from __future__ import annotations

import io
import itertools
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aura.cli.render import JsonPrinter, Painter, StreamPrinter, format_entry, json_text
from aura.contracts import Session
from aura.executors.custom import NativeLineParser
from aura.recorder import Recorder
from aura.store import session_history
from aura.store_sqlite import SQLiteStore

from .fuzz_support import (
    DEEP,
    HOSTILE,
    TERMINAL_ATTACK,
    budget,
    generated_line,
    line_parsers,
    mutated_line,
    seed_lines,
    strict_json,
    terminal_safe,
)

PARSERS = line_parsers()
_ids = itertools.count()


@pytest.fixture(scope="module")
def store() -> Iterator[SQLiteStore]:
    with tempfile.TemporaryDirectory() as tmp:
        s = SQLiteStore(Path(tmp) / "aura.db")
        yield s
        s.close()


def new_session(store: SQLiteStore) -> str:
    sid = f"fuzz-{next(_ids)}"
    store.create_session(Session(id=sid, executor="custom", state="queued", cwd="/tmp",
                                 created_at="2026-01-01T00:00:00.000Z",
                                 updated_at="2026-01-01T00:00:00.000Z", prompt="p"))
    return sid


def deep(depth: int) -> dict:
    value: dict = {"a": 1}
    for _ in range(depth):
        value = {"a": value}
    return value


# Entries as aura itself or a parser could hand them to the recorder: any kind, text with
# escape sequences and lone surrogates, numbers JSON cannot hold, nesting past the stack.
ENTRY = st.fixed_dictionaries(
    {"kind": st.sampled_from(["assistant_message", "raw", "system", "usage", "tool_call",
                              "error", "thinking", "user_message", "state"])},
    optional={"text": st.text(max_size=30) | st.just(TERMINAL_ATTACK) | st.just("a\ud800"),
              "target": st.just(TERMINAL_ATTACK) | st.text(max_size=10),
              "status": st.sampled_from(["ok", "error", "running", "\x1b[2J"]),
              "usage": st.dictionaries(st.sampled_from(["input_tokens", "output_tokens",
                                                        "cost_usd"]),
                                       st.floats() | st.integers() | st.just(10**400)),
              "data": HOSTILE.map(lambda v: deep(1200) if v == DEEP else v),
              "from": st.just(TERMINAL_ATTACK), "reason": st.just("\x1b]0;t\x07")})


def shown_everywhere(store: SQLiteStore, sid: str, records: list) -> list:
    """The session through `session show --json` and its text form; the entries."""
    data = session_history(store, sid)
    parsed = strict_json(json_text(data))
    assert strict_json(json_text(data, compact=True)) == parsed
    for entry in data["entries"]:
        for painted in (False, True):
            shown = format_entry(entry, Painter(painted))
            if shown is not None:
                terminal_safe(shown[0], painted)
    for _seq, _entry, text in records:
        strict_json(text)
    return data["entries"]


def record(store: SQLiteStore, sid: str, feed) -> list:
    """Run ``feed(recorder)`` with the --no-tui and --json printers both watching."""
    out, err, js = io.StringIO(), io.StringIO(), io.StringIO()
    printer, json_printer = StreamPrinter(out, err), JsonPrinter(js)
    seen: list = []

    def watch(records: list) -> None:
        seen.extend(records)
        printer(records)
        json_printer(records)

    recorder = Recorder(store, sid, "exec", "coding_initial", watcher=watch, batch_size=7)
    feed(recorder)
    recorder.close()
    terminal_safe(out.getvalue() + err.getvalue(), painted=False)
    for line in js.getvalue().split("\n")[:-1]:
        strict_json(line)
    return seen


@budget(100)
@given(st.lists(ENTRY, min_size=1, max_size=12))
def test_hostile_entries_are_stored_and_shown(store: SQLiteStore, entries: list) -> None:
    sid = new_session(store)
    seen = record(store, sid, lambda r: r.emit(entries))
    stored = shown_everywhere(store, sid, seen)
    assert len(stored) == len(entries) == len(seen)
    assert [e["kind"] for e in stored] == [e["kind"] for e in entries]


@pytest.mark.parametrize("executor", ["custom", "claude", "codex", "copilot"])
def test_parsed_lines_are_stored_and_shown(store: SQLiteStore, executor: str) -> None:
    """Lines through a parser's feed_lines (the custom one stores the agent's own JSON text
    when it is an entry) into the store and out again."""
    seeds = seed_lines(executor)

    @budget(40)
    @given(st.lists(mutated_line(seeds) | generated_line(), min_size=1, max_size=8))
    def run(lines: list[str]) -> None:
        sid = new_session(store)
        parser = PARSERS[executor]()

        def feed(recorder: Recorder) -> None:
            parser.feed_lines(lines, recorder)
            recorder.emit(parser.finish())

        seen = record(store, sid, feed)
        stored = shown_everywhere(store, sid, seen)
        assert len(stored) == len(seen)
        if isinstance(parser, NativeLineParser):
            assert len(stored) == len(lines), "every line a command prints is stored"

    run()


def test_damaged_rows_are_shown_as_raw(store: SQLiteStore) -> None:
    """Rows a broken writer stored (the coordinator stores workers' texts undecoded): not
    JSON, JSON that is no entry, NaN, a lone surrogate escape, nesting past the stack."""
    sid = new_session(store)
    bodies = ['{"seq":1,"kind":"assistant_message","text":"ok"}', "not json {",
              '{"seq":3,"kind":["x"]}', "[1,2]", '{"seq":5,"kind":"usage","usage":'
              '{"input_tokens":Infinity,"output_tokens":NaN}}',
              '{"seq":6,"kind":"raw","text":"\\ud800\\u001b]52;c;eA==\\u0007"}',
              '{"seq":7,"kind":"system","data":' + "[" * 5000 + "]" * 5000 + "}"]
    store.append_entries(sid, [(i + 1, "exec", "raw", b) for i, b in enumerate(bodies)])
    entries = shown_everywhere(store, sid, [])
    assert len(entries) == len(bodies)
    assert entries[0]["text"] == "ok"
    assert [e["kind"] for e in entries[1:4:2]] == ["raw", "raw"]
    assert entries[1]["text"] == "not json {" and entries[1]["data"]["damaged"]
    # The JSON keeps the agent's exact text (the escape sequence included).
    assert json.loads(json_text(entries))[5]["text"] == "\ud800\x1b]52;c;eA==\x07"
