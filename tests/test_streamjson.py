"""Parsers of the stream-json family on the real recorded output of claude 2.1.197 and
droid 0.215.0 (tests/fixtures/agents/, recorded against a fake model server), plus the
documented cursor-agent and amp shapes (no recordings exist for those two)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aura.contracts import Entry
from aura.executors.base import LineParser
from aura.executors.cursor import CursorParser
from aura.executors.droid import DroidParser
from aura.executors.streamjson import StreamJsonParser, tool_action, tool_target

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "agents"


def parse(parser: LineParser, name: str) -> list[Entry]:
    entries: list[Entry] = []
    for line in (FIXTURES / f"{name}.stdout.jsonl").read_text().splitlines():
        entries.extend(parser.feed(line))
    entries.extend(parser.finish())
    return entries


def meta(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.meta.json").read_text())


def kinds(entries: list[Entry], kind: str) -> list[Entry]:
    return [e for e in entries if e["kind"] == kind]


@pytest.mark.parametrize(("name", "make", "filename"), [
    ("claude-write", StreamJsonParser, "hello.txt"),
    ("claude-partial", StreamJsonParser, "hello.txt"),
    ("claude-resume", StreamJsonParser, "bye.txt"),
    ("droid-write", DroidParser, "hello.txt"),
])
def test_write_runs(name: str, make: type[StreamJsonParser], filename: str) -> None:
    parser = make()
    entries = parse(parser, name)
    calls = kinds(entries, "tool_call")
    assert [c["status"] for c in calls] == ["running", "ok"]
    start, end = calls
    assert start["id"] == end["id"]
    for call in calls:
        assert call["action"] == "file_write"
        assert call["target"] == filename  # relative to the agent's cwd
    assert "File created" in end["output"] or "success" in end["output"]
    texts = [e["text"] for e in kinds(entries, "assistant_message")]
    assert texts[-1] == ("Done again." if "resume" in name else "Done.")
    usage = kinds(entries, "usage")
    assert len(usage) == 1
    assert usage[0]["usage"]["input_tokens"] == 200
    assert usage[0]["usage"]["output_tokens"] == 40
    if name.startswith("claude"):
        assert usage[0]["usage"]["cost_usd"] == pytest.approx(0.002)
    info = meta(name)
    expected = info["resumed_session_id"] or info["session_id"]
    assert parser.native_session_id == expected
    assert parser.error is None
    assert not kinds(entries, "error")


def test_claude_partial_stream_events_are_kept_raw() -> None:
    entries = parse(StreamJsonParser(), "claude-partial")
    raw = kinds(entries, "raw")
    lines = (FIXTURES / "claude-partial.stdout.jsonl").read_text().splitlines()
    assert len(raw) == sum('"type":"stream_event"' in line for line in lines)
    # The complete messages are not doubled by the deltas.
    assert [e["text"] for e in kinds(entries, "assistant_message")] == \
        ["I'll do that now.", "Done."]


def test_claude_two_turns_in_one_process() -> None:
    entries = parse(StreamJsonParser(), "claude-stream-input")
    assert [e["text"] for e in kinds(entries, "assistant_message")] == \
        ["I'll do that now.", "Done.", "I'll do that now.", "Done again."]
    assert [e["target"] for e in kinds(entries, "tool_call") if e["status"] == "ok"] == \
        ["hello.txt", "bye.txt"]
    assert len(kinds(entries, "usage")) == 2


def test_droid_resume_recording_is_empty() -> None:
    # droid 0.215 refused the resume with exit 1 and no output at all: nothing to parse,
    # and the executor's resume fallback takes over (tests/test_agents_e2e.py).
    parser = DroidParser()
    assert parse(parser, "droid-resume") == []
    assert meta("droid-resume")["exit_code"] == 1


def test_claude_error_result_sets_the_error() -> None:
    parser = StreamJsonParser()
    entries = parser.feed(json.dumps({
        "type": "result", "subtype": "error_during_execution", "is_error": True,
        "result": "Invalid API key", "session_id": "s1", "usage": {"input_tokens": 3}}))
    assert parser.error == "Invalid API key"
    assert [e["kind"] for e in entries] == ["usage", "error"]
    assert parser.native_session_id == "s1"


def test_claude_refused_resume_recording() -> None:
    # claude 2.1.197 given a session id it does not know (recorded by hand).
    parser = StreamJsonParser()
    entries = parse(parser, "claude-resume-refused")
    assert parser.error == "No conversation found with session ID: " \
        "11111111-2222-3333-4444-555555555555"
    assert [e["kind"] for e in entries] == ["error"]  # its all-zero usage is not kept
    assert parser.native_session_id == meta("claude-resume-refused")["resumed_session_id"]


def test_unknown_and_broken_lines_are_raw_never_an_exception() -> None:
    parser = StreamJsonParser()
    for line in ["not json", "{broken", "[1, 2]", '{"type": "result"} trailing', '{"a": }',
                 '{"type": "brand_new", "x": 1}', '{"type": "assistant", "message": 5}',
                 '{"type": "user", "message": {}}']:
        out = parser.feed(line)
        assert all(e["kind"] in {"raw", "system"} for e in out), (line, out)
    assert parser.feed("") == []


def test_unfinished_tool_call_ends_as_error() -> None:
    parser = StreamJsonParser("/w")
    parser.feed(json.dumps({"type": "assistant", "message": {"content": [
        {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "make"}}]}}))
    [end] = parser.finish()
    assert (end["id"], end["action"], end["target"], end["status"]) == \
        ("t1", "command", "make", "error")


@pytest.mark.parametrize(("tool", "args", "action", "target"), [
    ("Write", {"file_path": "/w/a.txt"}, "file_write", "a.txt"),
    ("Edit", {"file_path": "/w/src/b.py"}, "file_edit", "src/b.py"),
    ("MultiEdit", {"file_path": "/elsewhere/c.py"}, "file_edit", "/elsewhere/c.py"),
    ("Read", {"file_path": "/w/r.md"}, "file_read", "r.md"),
    ("Bash", {"command": "ls -la"}, "command", "ls -la"),
    ("Grep", {"pattern": "TODO", "path": "/w/src"}, "search", "TODO in src"),
    ("Glob", {"pattern": "**/*.py"}, "search", "**/*.py"),
    ("WebFetch", {"url": "https://example.org"}, "web_fetch", "https://example.org"),
    ("WebSearch", {"query": "aura"}, "web_fetch", "aura"),
    ("TodoWrite", {"todos": [{"content": "a", "status": "done"},
                             {"content": "b", "status": "in_progress"}]}, "todo", "b"),
    ("Task", {"description": "explore", "prompt": "…"}, "task", "explore"),
    ("mcp__github__create_issue", {"title": "x"}, "mcp", "github/create_issue"),
    ("Skill", {"name": "s"}, "other", "s"),
    # droid's and amp's names
    ("Create", {"file_path": "/w/n.txt"}, "file_write", "n.txt"),
    ("ApplyPatch", {"path": "/w/p.txt"}, "file_edit", "p.txt"),
    ("Execute", {"command": "pytest"}, "command", "pytest"),
    ("FetchUrl", {"url": "https://x"}, "web_fetch", "https://x"),
    ("create_file", {"path": "/w/amp.txt"}, "file_write", "amp.txt"),
    ("edit_file", {"path": "/w/amp.txt"}, "file_edit", "amp.txt"),
    ("glob", {"filePattern": "*.md"}, "search", "*.md"),
    ("read_web_page", {"url": "https://y"}, "web_fetch", "https://y"),
])
def test_tool_mapping(tool: str, args: dict, action: str, target: str) -> None:
    mapped = tool_action(tool)
    assert mapped.value == action
    assert tool_target(tool, mapped, args, "/w") == target


def test_cursor_documented_events() -> None:
    """cursor-agent has no recording: these lines follow its documented stream-json."""
    sid = "c6b62c6f-7ead-4fd6-9922-e952131177ff"
    lines = [
        {"type": "system", "subtype": "init", "apiKeySource": "login", "cwd": "/w",
         "session_id": sid, "model": "Claude 4 Sonnet", "permissionMode": "default"},
        {"type": "user", "message": {"role": "user", "content": [
            {"type": "text", "text": "make hello.txt"}]}, "session_id": sid},
        {"type": "thinking", "subtype": "delta", "text": "I should ", "session_id": sid},
        {"type": "thinking", "subtype": "delta", "text": "write it.", "session_id": sid},
        {"type": "assistant", "message": {"role": "assistant", "content": [
            {"type": "text", "text": "Writing it."}]}, "session_id": sid},
        {"type": "tool_call", "subtype": "started", "call_id": "call-1", "tool_call": {
            "writeToolCall": {"args": {"path": "/w/hello.txt", "fileText": "hi"}}},
         "session_id": sid},
        {"type": "tool_call", "subtype": "completed", "call_id": "call-1", "tool_call": {
            "writeToolCall": {"args": {"path": "/w/hello.txt", "fileText": "hi"},
                              "result": {"success": {"path": "/w/hello.txt",
                                                     "linesCreated": 1}}}},
         "session_id": sid},
        {"type": "tool_call", "subtype": "started", "call_id": "call-2", "tool_call": {
            "shellToolCall": {"args": {"command": "cat hello.txt"}}}, "session_id": sid},
        {"type": "tool_call", "subtype": "completed", "call_id": "call-2", "tool_call": {
            "shellToolCall": {"args": {"command": "cat hello.txt"},
                              "result": {"error": {"message": "denied"}}}},
         "session_id": sid},
        {"type": "tool_call", "subtype": "started", "call_id": "call-3", "tool_call": {
            "function": {"name": "custom_tool", "arguments": '{"path": "/w/x"}'}},
         "session_id": sid},
        {"type": "assistant", "message": {"role": "assistant", "content": [
            {"type": "text", "text": "Done."}]}, "session_id": sid},
        {"type": "result", "subtype": "success", "duration_ms": 1234, "is_error": False,
         "result": "Writing it.Done.", "session_id": sid, "request_id": "r1"},
    ]
    parser = CursorParser()
    entries = [e for line in lines for e in parser.feed(json.dumps(line))]
    entries += parser.finish()
    assert parser.native_session_id == sid
    echoed = kinds(entries, "system")[1]
    assert echoed["data"] == {"role": "user", "text": "make hello.txt"}
    assert echoed["text"] == "user message received (14 characters)"
    assert [e["text"] for e in kinds(entries, "thinking")] == ["I should write it."]
    assert [e["text"] for e in kinds(entries, "assistant_message")] == ["Writing it.", "Done."]
    calls = [(e["id"], e["action"], e["target"], e["status"])
             for e in kinds(entries, "tool_call")]
    assert calls == [
        ("call-1", "file_write", "hello.txt", "running"),
        ("call-1", "file_write", "hello.txt", "ok"),
        ("call-2", "command", "cat hello.txt", "running"),
        ("call-2", "command", "cat hello.txt", "error"),
        ("call-3", "other", "x", "running"),
        ("call-3", "other", "x", "error"),  # never completed
    ]
    assert parser.error is None


def test_amp_documented_events_sum_message_usage() -> None:
    """amp has no recording: these lines follow its documented stream-json, whose result
    carries no usage (it is reported per assistant message)."""
    tid = "T-2775dc92-90ed-4f85-8b73-8f9766029e83"
    usage = {"input_tokens": 10, "cache_creation_input_tokens": 5,
             "cache_read_input_tokens": 100, "output_tokens": 8}
    lines = [
        {"type": "system", "subtype": "init", "cwd": "/w", "session_id": tid,
         "tools": ["Bash", "create_file"], "mcp_servers": []},
        {"type": "assistant", "message": {"type": "message", "role": "assistant", "id": "m1",
                                          "content": [{"type": "tool_use", "id": "tu1",
                                                       "name": "create_file", "input": {
                                                           "path": "/w/hello.txt",
                                                           "content": "hi"}}],
                                          "usage": usage}, "session_id": tid},
        {"type": "user", "message": {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "tu1", "content": "Created",
             "is_error": False}]}, "session_id": tid},
        {"type": "assistant", "message": {"type": "message", "role": "assistant", "id": "m2",
                                          "content": [{"type": "text", "text": "Done."}],
                                          "usage": usage}, "session_id": tid},
        {"type": "result", "subtype": "success", "duration_ms": 2906, "is_error": False,
         "num_turns": 2, "result": "Done.", "session_id": tid},
    ]
    parser = StreamJsonParser()
    entries = [e for line in lines for e in parser.feed(json.dumps(line))]
    assert parser.native_session_id == tid
    [total] = kinds(entries, "usage")
    assert total["usage"] == {"input_tokens": 230, "output_tokens": 16,
                              "cached_input_tokens": 200}
    assert [e["text"] for e in kinds(entries, "assistant_message")] == ["Done."]
    assert [(e["action"], e["target"]) for e in kinds(entries, "tool_call")] == \
        [("file_write", "hello.txt")] * 2
