"""The codex, opencode and copilot parsers on the real agents' recorded output
(tests/fixtures/agents/, recorded with codex-cli 0.169.0, opencode 1.18.33 and copilot
1.0.102), plus the event shapes the recordings do not contain."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from aura.contracts import Entry
from aura.executors.codex import CodexParser
from aura.executors.copilot import CopilotParser
from aura.executors.jsonevents import JsonEventParser
from aura.executors.opencode import OpencodeParser

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "agents"

PARSERS: dict[str, type[JsonEventParser]] = {
    "codex": CodexParser, "opencode": OpencodeParser, "copilot": CopilotParser}


def replay(run: str) -> tuple[list[Entry], JsonEventParser, dict[str, Any]]:
    meta = json.loads((FIXTURES / f"{run}.meta.json").read_text())
    parser = PARSERS[run.split("-")[0]](meta["cwd"])
    entries: list[Entry] = []
    for line in (FIXTURES / f"{run}.stdout.jsonl").read_text().splitlines():
        entries.extend(parser.feed(line))
    entries.extend(parser.finish())
    return entries, parser, meta


def feed(parser: JsonEventParser, *events: Any) -> list[Entry]:
    entries: list[Entry] = []
    for event in events:
        entries.extend(parser.feed(event if isinstance(event, str) else json.dumps(event)))
    return entries


def of_kind(entries: list[Entry], kind: str) -> list[Entry]:
    return [e for e in entries if e["kind"] == kind]


def assert_calls_closed(entries: list[Entry]) -> None:
    """Every call that started ends with the same id, tool, action and target."""
    calls = of_kind(entries, "tool_call")
    ends = {c["id"]: c for c in calls if c["status"] != "running"}
    for call in calls:
        end = ends[call["id"]]
        assert (end["tool"], end["action"], end["target"]) == \
            (call["tool"], call["action"], call["target"])


# the write runs: (run, tool, action, target) of the call that wrote hello.txt
WRITES = [
    ("codex-write", "file_change", "file_write", "hello.txt"),
    ("opencode-write", "write", "file_write", "hello.txt"),
    ("copilot-write", "apply_patch", "file_write", "hello.txt"),
    ("copilot-anthropic-write", "create", "file_write", "hello.txt"),
]


@pytest.mark.parametrize(("run", "tool", "action", "target"), WRITES)
def test_write_run_parses_the_write_the_reply_usage_and_session(
        run: str, tool: str, action: str, target: str) -> None:
    entries, parser, meta = replay(run)
    done = [c for c in of_kind(entries, "tool_call") if c["status"] == "ok"]
    assert [(c["tool"], c["action"], c["target"]) for c in done] == [(tool, action, target)]
    assert of_kind(entries, "assistant_message")[-1]["text"] == "Done."
    assert of_kind(entries, "usage"), "no usage entry"
    assert parser.native_session_id == meta["session_id"]
    assert parser.error is None
    assert not of_kind(entries, "raw")
    assert_calls_closed(entries)


def test_copilot_chat_completions_run_writes_through_a_shell_redirect() -> None:
    # Over the chat-completions wire the model wrote hello.txt with `printf … > hello.txt`:
    # a command, whose target is the command and whose data names the file it writes.
    entries, parser, meta = replay("copilot-chatwire-write")
    (call,) = [c for c in of_kind(entries, "tool_call") if c["status"] == "ok"]
    assert (call["tool"], call["action"]) == ("bash", "command")
    assert call["target"] == "printf '%s' 'hi' > 'hello.txt'"
    assert call["data"] == {"writes": ["hello.txt"]}
    assert of_kind(entries, "assistant_message")[-1]["text"] == "Done."
    assert parser.native_session_id == meta["session_id"]
    assert of_kind(entries, "usage")[0]["usage"]["premium_requests"] == 0


@pytest.mark.parametrize("run", ["codex-resume", "opencode-resume", "copilot-resume"])
def test_resume_run_keeps_the_resumed_session(run: str) -> None:
    entries, parser, meta = replay(run)
    assert meta["resumed_session_id"]
    assert parser.native_session_id == meta["resumed_session_id"]
    done = [c for c in of_kind(entries, "tool_call") if c["status"] == "ok"]
    assert [(c["action"], c["target"]) for c in done] == [("file_write", "bye.txt")]
    assert of_kind(entries, "assistant_message")[-1]["text"] == "Done again."


def test_codex_usage_figures() -> None:
    entries, _, _ = replay("codex-write")
    (usage,) = of_kind(entries, "usage")
    assert usage["usage"] == {"input_tokens": 200, "output_tokens": 40,
                              "cached_input_tokens": 0, "reasoning_tokens": 0}


def test_codex_resume_counts_only_this_turn() -> None:
    # codex reports the thread's running total (400/80 after the second turn, which
    # itself used 200/40): the previous total, stored with the first turn, is subtracted.
    first, _, _ = replay("codex-write")
    meta = json.loads((FIXTURES / "codex-resume.meta.json").read_text())
    from aura.executors.codex import _previous_thread_total

    parser = CodexParser(meta["cwd"], _previous_thread_total(first))
    entries = feed(parser, *(FIXTURES / "codex-resume.stdout.jsonl").read_text().splitlines())
    (usage,) = of_kind(entries, "usage")
    assert usage["usage"]["input_tokens"] == 200
    assert usage["usage"]["output_tokens"] == 40
    assert usage["data"]["thread_total"]["input_tokens"] == 400


def test_opencode_usage_is_per_request_and_sums_to_the_run() -> None:
    entries, _, _ = replay("opencode-write")
    usages = [u["usage"] for u in of_kind(entries, "usage")]
    assert len(usages) == 2  # two model requests: the write, then "Done."
    assert sum(u["input_tokens"] for u in usages) == 200
    assert sum(u["output_tokens"] for u in usages) == 40
    assert all(u["cost_usd"] == 0 for u in usages)


def test_copilot_deltas_do_not_duplicate_the_final_text() -> None:
    entries, _, _ = replay("copilot-write")
    texts = [e["text"] for e in of_kind(entries, "assistant_message")]
    assert texts == ["I'll do that now.", "Done."]


def test_copilot_deltas_without_a_final_message_are_kept() -> None:
    parser = CopilotParser("/w")
    delta = {"type": "assistant.message_delta", "ephemeral": True,
             "data": {"messageId": "m1", "deltaContent": "Half a "}}
    more = {"type": "assistant.message_delta", "ephemeral": True,
            "data": {"messageId": "m1", "deltaContent": "sentence"}}
    assert feed(parser, delta, more) == []
    (tail,) = parser.finish()
    assert tail["kind"] == "assistant_message"
    assert tail["text"] == "Half a sentence"
    assert tail["data"] == {"partial": True}


def test_copilot_interrupted_by_ctrl_c() -> None:
    # Real copilot 1.0.102 output, interrupted while waiting for the model.
    entries, parser, _ = replay("copilot-interrupt")
    assert [e["text"] for e in entries] == [
        "interrupted during model_call", "model call: cancelled", "aborted by the user",
        "cancellation: Operation cancelled by user"]
    assert {e["kind"] for e in entries} == {"system"}
    assert parser.error is None
    assert parser.native_session_id is None  # no result event: nothing to resume


def test_copilot_denied_tool_is_identified_from_the_request() -> None:
    parser = CopilotParser("/w")
    entries = feed(parser, {
        "type": "assistant.message",
        "data": {"messageId": "m", "content": "", "toolRequests": [
            {"toolCallId": "c1", "name": "bash", "arguments": {"command": "rm -rf x"}}]}},
        {"type": "tool.execution_complete",
         "data": {"toolCallId": "c1", "success": False,
                  "error": {"message": "Permission denied"}}})
    (call,) = of_kind(entries, "tool_call")
    assert (call["action"], call["target"], call["status"]) == ("command", "rm -rf x", "error")
    assert call["output"] == "Permission denied"


def test_copilot_usage_session_error_and_mcp() -> None:
    parser = CopilotParser("/w")
    entries = feed(
        parser,
        {"type": "assistant.usage", "data": {"model": "m", "inputTokens": 10,
                                             "outputTokens": 3, "cacheReadTokens": 4,
                                             "cost": 1}},
        {"type": "tool.execution_start",
         "data": {"toolCallId": "t", "toolName": "github-get_issue",
                  "mcpServerName": "github", "mcpToolName": "get_issue", "arguments": {}}},
        {"type": "session.error", "data": {"errorType": "quota", "message": "out of quota"}})
    usage, call, error = entries
    assert usage["usage"] == {"input_tokens": 10, "output_tokens": 3, "cached_input_tokens": 4}
    assert usage["data"]["cost"] == 1  # premium requests, not dollars
    assert (call["action"], call["target"]) == ("mcp", "github.get_issue")
    assert error == {"kind": "error", "text": "out of quota"}
    assert parser.error == "out of quota"
    feed(parser, {"type": "result", "sessionId": "s", "exitCode": 1})
    assert parser.error == "copilot reported exit code 1"
    feed(parser, {"type": "result", "sessionId": "s", "exitCode": 0})
    assert parser.error is None  # the final result decides


def test_codex_items_map_to_actions() -> None:
    parser = CodexParser("/repo")
    entries = feed(
        parser,
        {"type": "item.started", "item": {"id": "c", "type": "command_execution",
                                          "command": "pytest -q", "status": "in_progress"}},
        {"type": "item.completed", "item": {"id": "c", "type": "command_execution",
                                            "command": "pytest -q", "exit_code": 1,
                                            "aggregated_output": "1 failed",
                                            "status": "failed"}},
        {"type": "item.completed", "item": {"id": "f", "type": "file_change", "status":
                                            "completed", "changes": [
                                                {"path": "/repo/a.py", "kind": "update"},
                                                {"path": "/elsewhere/b.py", "kind": "add"}]}},
        {"type": "item.started", "item": {"id": "t", "type": "todo_list", "items": [
            {"text": "read", "completed": True}, {"text": "fix", "completed": False}]}},
        {"type": "item.completed", "item": {"id": "m", "type": "mcp_tool_call",
                                            "server": "docs", "tool": "lookup",
                                            "arguments": {"q": "x"}, "status": "failed",
                                            "error": {"message": "timeout"}}},
        {"type": "item.completed", "item": {"id": "w", "type": "web_search",
                                            "query": "python asyncio"}},
        {"type": "item.completed", "item": {"id": "r", "type": "reasoning",
                                            "text": "thinking it over"}},
        {"type": "item.completed", "item": {"id": "e", "type": "error",
                                            "message": "model rerouted"}})
    started, failed, change, todo, mcp, web, thought, warning = entries
    assert (started["action"], started["target"], started["status"]) == \
        ("command", "pytest -q", "running")
    assert (failed["status"], failed["output"], failed["data"]) == \
        ("error", "1 failed", {"exit_code": 1})
    assert (change["action"], change["target"]) == ("file_edit", "a.py, /elsewhere/b.py")
    assert (todo["action"], todo["target"], todo["status"]) == ("todo", "1/2 done", "running")
    assert (mcp["action"], mcp["target"], mcp["status"], mcp["output"]) == \
        ("mcp", "docs.lookup", "error", "timeout")
    assert (web["action"], web["target"]) == ("web_fetch", "python asyncio")
    assert thought == {"kind": "thinking", "text": "thinking it over"}
    assert warning == {"kind": "error", "text": "model rerouted"}
    assert parser.error is None  # item errors are warnings, not a failed turn
    # the todo list never completed: closed as an error when the stream ends
    (closed,) = parser.finish()
    assert (closed["id"], closed["status"]) == ("t", "error")


def test_codex_todo_list_ticks_along() -> None:
    parser = CodexParser()
    todo = {"id": "t", "type": "todo_list", "items": [{"text": "a", "completed": False},
                                                      {"text": "b", "completed": False}]}
    ticked = {**todo, "items": [{"text": "a", "completed": True},
                                {"text": "b", "completed": False}]}
    done = {**todo, "items": [{"text": "a", "completed": True}, {"text": "b", "completed": True}]}
    entries = feed(parser, {"type": "item.started", "item": todo},
                   {"type": "item.updated", "item": ticked},
                   {"type": "item.completed", "item": done})
    assert [(e["id"], e["target"], e["status"]) for e in entries] == [
        ("t", "0/2 done", "running"), ("t", "1/2 done", "running"), ("t", "2/2 done", "ok")]
    assert entries[-1]["output"] == "[x] a\n[x] b"


def test_codex_web_search_target_known_only_at_the_end() -> None:
    parser = CodexParser()
    start, end = feed(
        parser,
        {"type": "item.started", "item": {"id": "w", "type": "web_search", "query": ""}},
        {"type": "item.completed", "item": {"id": "w", "type": "web_search",
                                            "query": "asyncio timeout"}})
    assert (start["target"], start["status"]) == ("", "running")
    assert (end["action"], end["target"], end["status"]) == ("web_fetch", "asyncio timeout", "ok")


def test_codex_without_network_reports_its_retries() -> None:
    # Real codex 0.169.0 output with no network (stopped by a timeout while retrying).
    entries, parser, meta = replay("codex-offline")
    assert parser.native_session_id == meta["session_id"]
    kinds = [e["kind"] for e in entries]
    assert kinds.count("system") == 1 + 9  # the thread, then nine "Reconnecting..."
    (warning,) = of_kind(entries, "error")  # the transport fallback, an error item
    assert warning["text"].startswith("Falling back from WebSockets")
    assert not of_kind(entries, "raw")
    assert parser.error is not None and parser.error.startswith("Reconnecting")


def test_codex_failed_turn_sets_the_error_and_a_retried_one_clears_it() -> None:
    parser = CodexParser()
    feed(parser, {"type": "error", "message": "stream disconnected; retrying"})
    assert parser.error == "stream disconnected; retrying"
    feed(parser, {"type": "turn.completed", "usage": {"input_tokens": 1, "output_tokens": 1}})
    assert parser.error is None
    entries = feed(parser, {"type": "turn.failed", "error": {"message": "quota exceeded"}})
    assert entries == [{"kind": "error", "text": "quota exceeded"}]
    assert parser.error == "quota exceeded"


def test_codex_message_cut_short_is_kept_from_its_update() -> None:
    parser = CodexParser()
    assert feed(parser, {"type": "item.updated", "item": {
        "id": "a", "type": "agent_message", "text": "Working on"}}) == []
    assert parser.finish() == [{"kind": "assistant_message", "text": "Working on",
                                "data": {"partial": True}}]


def test_opencode_tools_and_errors() -> None:
    parser = OpencodeParser("/p")
    base = {"sessionID": "ses_1", "timestamp": 1}

    def tool(name: str, args: dict[str, Any], status: str = "completed", **state: Any) -> dict:
        return {"type": "tool_use", **base, "part": {
            "type": "tool", "tool": name, "callID": f"call_{name}",
            "state": {"status": status, "input": args, "output": "out", **state}}}

    entries = feed(
        parser,
        tool("edit", {"filePath": "/p/src/a.py", "oldString": "a", "newString": "b"}),
        tool("read", {"filePath": "/p/README.md"}),
        tool("bash", {"command": "ls -la", "description": "list"}),
        tool("grep", {"pattern": "TODO", "path": "/p/src"}),
        tool("glob", {"pattern": "**/*.py"}),
        tool("list", {"path": "/p"}),
        tool("webfetch", {"url": "https://example.com"}),
        tool("todowrite", {"todos": [{"content": "x", "status": "completed"},
                                     {"content": "y", "status": "pending"}]}),
        tool("task", {"description": "explore", "prompt": "look", "subagent_type": "general"}),
        tool("bash", {"command": "false"}, status="error", error="exit 1"),
        tool("mystery", {}, title="did something"),
        {"type": "reasoning", **base, "part": {"type": "reasoning", "text": "hmm"}},
        {"type": "error", **base, "error": {"name": "APIError",
                                             "data": {"message": "rate limited"}}},
        {"type": "brand_new_event", **base},
        "not json at all")
    actions = [(e["tool"], e["action"], e["target"], e["status"])
               for e in entries if e["kind"] == "tool_call"]
    assert actions == [
        ("edit", "file_edit", "src/a.py", "ok"),
        ("read", "file_read", "README.md", "ok"),
        ("bash", "command", "ls -la", "ok"),
        ("grep", "search", "TODO", "ok"),
        ("glob", "search", "**/*.py", "ok"),
        ("list", "file_read", "/p", "ok"),
        ("webfetch", "web_fetch", "https://example.com", "ok"),
        ("todowrite", "todo", "1/2 done", "ok"),
        ("task", "task", "explore", "ok"),
        ("bash", "command", "false", "error"),
        ("mystery", "other", "did something", "ok"),
    ]
    failed = next(e for e in entries if e.get("status") == "error")
    assert failed["output"] == "exit 1"
    rest = [e for e in entries if e["kind"] != "tool_call"]
    assert rest[0] == {"kind": "thinking", "text": "hmm"}
    assert rest[1] == {"kind": "error", "text": "APIError: rate limited"}
    assert parser.error == "APIError: rate limited"
    assert [e["kind"] for e in rest[2:]] == ["raw", "raw"]
    assert rest[3]["text"] == "not json at all"
    assert parser.native_session_id == "ses_1"


@pytest.mark.parametrize("parser_cls", [CodexParser, OpencodeParser, CopilotParser])
def test_nothing_is_dropped_and_nothing_raises(parser_cls: type[JsonEventParser]) -> None:
    parser = parser_cls("/w")
    odd = ['[1, 2]', '"a string"', '{"no_type": true}', '{"type": "x.unknown", "data": 1}',
           '{"type": "tool_use", "part": 5}', '{"type": "item.completed", "item": null}',
           '{"type": "tool.execution_start", "data": {}}', "{broken json"]
    entries = feed(parser, *odd)
    assert len(entries) == len(odd)
    assert all(e["kind"] == "raw" for e in entries)
    assert [e["text"] for e in entries] == odd
