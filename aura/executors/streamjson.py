"""The claude-style stream-json protocol, shared by claude, amp and cursor-agent (and the
base of droid's variant): one JSON object per stdout line, parsed into normalized entries.

Events understood (claude 2.1's ``--output-format stream-json --verbose``):

- ``system`` ``init``: the native ``session_id`` (captured at once), ``cwd`` (tool paths
  under it are shown relative), model → a ``system`` entry; other ``system`` subtypes →
  ``system``.
- ``assistant``: ``message.content`` blocks — ``text`` → ``assistant_message``,
  ``thinking`` → ``thinking``, ``tool_use`` → a ``tool_call`` with status ``running``
  (``tool_action`` and ``tool_target`` map the agent's tool name and input).
- ``user``: ``tool_result`` blocks close their ``tool_use`` (paired by id: same id, tool,
  action and target, status ``ok``/``error``, the output); text blocks are the agent
  echoing a user turn → ``system`` (the text in ``data``).
- ``result``: ``usage`` + ``total_cost_usd`` → one ``usage`` entry per turn (agents that
  report usage only per message, like amp, get the per-message figures summed instead);
  ``is_error`` or an ``error_*`` subtype → an ``error`` entry and ``parser.error``; its
  ``result`` text becomes the assistant message when the turn printed none.
- ``stream_event`` (partial deltas, when asked for with ``--include-partial-messages``),
  any other type, and any line that is not a JSON object → ``raw`` (kept, never dropped).

Usage convention: ``input_tokens`` counts every input token (cache reads and writes
included), ``cached_input_tokens`` the part read from the cache.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, cast

from aura.contracts import Entry, ToolAction, Usage
from aura.executors.base import LineParser
from aura.executors.events import (
    SHAPE_ERRORS,
    UNFINISHED_CALL,
    event_type,
    json_object,
    native_id,
    raw_entry,
    relativizer,
    usage_number,
)

# Tool names (lower-cased) of claude, amp, droid and cursor-agent → action.
TOOL_ACTIONS: dict[str, ToolAction] = {
    **dict.fromkeys(("write", "create", "create_file", "writefile", "write_file"),
                    ToolAction.FILE_WRITE),
    **dict.fromkeys(("edit", "multiedit", "edit_file", "applypatch", "apply_patch",
                     "notebookedit", "str_replace", "undo_edit", "format_file", "delete",
                     "strreplace"), ToolAction.FILE_EDIT),
    **dict.fromkeys(("read", "read_file", "readfile", "ls", "list", "notebookread",
                     "look_at"), ToolAction.FILE_READ),
    **dict.fromkeys(("bash", "execute", "shell", "run_terminal_cmd", "bashoutput",
                     "killshell", "killbash"), ToolAction.COMMAND),
    **dict.fromkeys(("grep", "glob", "search", "finder", "codebase_search", "find",
                     "file_search", "toolsearch"), ToolAction.SEARCH),
    **dict.fromkeys(("webfetch", "websearch", "fetchurl", "web_search", "read_web_page",
                     "webfetchtool", "fetch"), ToolAction.WEB_FETCH),
    **dict.fromkeys(("todowrite", "todoread", "todo_write", "todo_read", "updatetodos",
                     "todo", "task_list"), ToolAction.TODO),
    **dict.fromkeys(("task", "agent", "subagent"), ToolAction.TASK),
}

# Input keys that name the target, per action, first match wins.
_TARGET_KEYS: dict[ToolAction, tuple[str, ...]] = {
    ToolAction.FILE_WRITE: ("file_path", "path", "filePath", "target_file", "notebook_path"),
    ToolAction.FILE_EDIT: ("file_path", "path", "filePath", "target_file", "notebook_path"),
    ToolAction.FILE_READ: ("file_path", "path", "filePath", "target_file", "notebook_path",
                           "directory_path", "dir"),
    ToolAction.COMMAND: ("command", "cmd", "bash_id", "shell_id"),
    ToolAction.SEARCH: ("pattern", "query", "filePattern", "globPattern", "glob_pattern",
                        "glob", "regex"),
    ToolAction.WEB_FETCH: ("url", "query"),
    ToolAction.TASK: ("description", "subagent_type", "prompt"),
    ToolAction.OTHER: ("file_path", "path", "command", "query", "url", "name"),
}


_PATH_KEYS = frozenset({"file_path", "path", "filePath", "target_file", "notebook_path",
                        "directory_path", "dir"})


def tool_action(name: str) -> ToolAction:
    """The normalized action of an agent's tool name (``mcp__*`` → mcp, unknown → other)."""
    lowered = name.lower()
    if lowered.startswith(("mcp__", "mcp:", "mcp_")):
        return ToolAction.MCP
    return TOOL_ACTIONS.get(lowered, ToolAction.OTHER)


def tool_target(name: str, action: ToolAction, args: Any, cwd: str | None) -> str:
    """The path, command, pattern or URL a tool call is about ('' when none)."""
    if action is ToolAction.MCP:
        parts = [p for p in name.replace(":", "__").split("__")[1:] if p]
        return "/".join(parts) or name
    if not isinstance(args, Mapping):
        return args if isinstance(args, str) else ""
    if action is ToolAction.TODO:
        todos = args.get("todos")
        if isinstance(todos, list):
            active = [t.get("content", "") for t in todos
                      if isinstance(t, Mapping) and t.get("status") == "in_progress"]
            return active[0] if active else f"{len(todos)} items"
        return ""
    relative = relativizer(cwd)
    for key in _TARGET_KEYS.get(action, _TARGET_KEYS[ToolAction.OTHER]):
        value = args.get(key)
        if isinstance(value, str) and value:
            if key in _PATH_KEYS:
                return relative(value)
            if action is ToolAction.SEARCH:
                where = args.get("path")
                if isinstance(where, str) and where:
                    return f"{value} in {relative(where)}"
            return value
    return ""


def result_text(content: Any) -> str:
    """A tool result's content as text: a string, or a list of text blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, Mapping):
                if block.get("type") == "text":
                    parts.append(str(block.get("text", "")))
                else:
                    parts.append(json.dumps(block, ensure_ascii=False))
            else:
                parts.append(str(block))
        return "\n".join(parts)
    if content is None:
        return ""
    return json.dumps(content, ensure_ascii=False)


def normalize_usage(usage: Mapping[str, Any], cost: Any = None) -> dict[str, Any]:
    """Anthropic-style usage (input excludes cache) → aura's (input includes cache)."""
    def number(key: str) -> int:
        value = usage.get(key)
        return value if type(value) is int and usage_number(value) else 0

    cached = number("cache_read_input_tokens")
    out: dict[str, Any] = {
        "input_tokens": number("input_tokens") + number("cache_creation_input_tokens")
        + cached,
        "output_tokens": number("output_tokens"),
        "cached_input_tokens": cached,
    }
    if usage_number(cost):
        out["cost_usd"] = float(cost)
    return out


def echo(text: str, role: str = "user") -> Entry:
    """The agent repeating a message it was given (already stored as the user_message):
    kept, shown as one short line."""
    return {"kind": "system", "text": f"{role} message received ({len(text)} characters)",
            "data": {"role": role, "text": text}}


class StreamJsonParser(LineParser):
    """Parses claude-style stream-json. Subclasses add or replace event handlers in
    ``handlers`` (keyed by the event's ``type``)."""

    def __init__(self, cwd: str | None = None) -> None:
        super().__init__()
        self.cwd = cwd
        self.pending: dict[str, Entry] = {}  # open tool calls by id
        self.turn_text = False  # an assistant message was emitted since the last result
        self.message_usage: dict[str, Mapping[str, Any]] = {}  # per message id
        self.handlers: dict[str, Callable[[dict[str, Any], str], list[Entry]]] = {
            "system": self.on_system,
            "assistant": self.on_assistant,
            "user": self.on_user,
            "result": self.on_result,
        }

    # the hot path ------------------------------------------------------------------------

    def feed(self, line: str) -> list[Entry]:
        text = line.strip()
        obj = json_object(text)
        if obj is None:
            return [raw_entry(line)] if text else []
        session = native_id(obj.get("session_id"))
        if session is not None:
            self.native_session_id = session
        kind = event_type(obj)
        handler = self.handlers.get(kind) if kind is not None else None
        if handler is None:
            return [raw_entry(line)]
        try:
            return handler(obj, line)
        except SHAPE_ERRORS:
            # A known event type in a shape this parser does not know: keep it as is.
            return [raw_entry(line)]

    # events ------------------------------------------------------------------------------

    def on_system(self, obj: dict[str, Any], line: str) -> list[Entry]:
        subtype = obj.get("subtype") or "system"
        if subtype == "init":
            if isinstance(obj.get("cwd"), str):
                self.cwd = obj["cwd"]
            model = obj.get("model")
            text = f"session {obj.get('session_id', '?')} started" + \
                (f" (model {model})" if model else "")
            return [{"kind": "system", "text": text, "data": obj}]
        detail = obj.get("status") or obj.get("message") or ""
        return [{"kind": "system", "text": f"{subtype} {detail}".strip(), "data": obj}]

    def on_assistant(self, obj: dict[str, Any], line: str) -> list[Entry]:
        message = obj.get("message") or {}
        usage = message.get("usage")
        if isinstance(usage, Mapping) and message.get("id"):
            self.message_usage[message["id"]] = usage
        elif isinstance(usage, Mapping):
            self.message_usage[f"#{len(self.message_usage)}"] = usage
        content = message.get("content")
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        out: list[Entry] = []
        for block in content or ():
            out.extend(self.content_block(block))
        return out

    def content_block(self, block: Mapping[str, Any]) -> list[Entry]:
        kind = block.get("type")
        if kind == "text":
            text = block.get("text") or ""
            if not text:
                return []
            self.turn_text = True
            return [{"kind": "assistant_message", "text": text}]
        if kind == "thinking":
            thought = block.get("thinking") or block.get("text") or ""
            return [{"kind": "thinking", "text": thought}] if thought else []
        if kind == "redacted_thinking":
            return [{"kind": "thinking", "text": "[redacted thinking]"}]
        if kind in ("tool_use", "server_tool_use"):
            return [self.tool_start(str(block.get("id") or ""), str(block.get("name") or ""),
                                    block.get("input"))]
        if kind and str(kind).endswith("tool_result"):
            return self.tool_result(block)
        return [{"kind": "raw", "text": json.dumps(block, ensure_ascii=False)}]

    def on_user(self, obj: dict[str, Any], line: str) -> list[Entry]:
        content = (obj.get("message") or {}).get("content")
        if isinstance(content, str):
            return [echo(content)]
        out: list[Entry] = []
        for block in content or ():
            if block.get("type") == "tool_result":
                out.extend(self.tool_result(block))
            elif block.get("type") == "text":
                out.append(echo(str(block.get("text", ""))))
            else:
                out.append({"kind": "raw", "text": json.dumps(block, ensure_ascii=False)})
        return out

    def on_result(self, obj: dict[str, Any], line: str) -> list[Entry]:
        out: list[Entry] = []
        result = obj.get("result")
        failed = bool(obj.get("is_error")) or str(obj.get("subtype", "")).startswith("error")
        if isinstance(result, str) and result and not self.turn_text and not failed:
            out.append({"kind": "assistant_message", "text": result})
        usage = obj.get("usage")
        if isinstance(usage, Mapping):
            normalized = normalize_usage(usage, obj.get("total_cost_usd"))
            if any(normalized.values()):  # a turn refused before any request: no usage
                out.append({"kind": "usage", "usage": cast(Usage, normalized)})
        elif self.message_usage:
            summed = self._summed_message_usage(obj.get("total_cost_usd"))
            out.append({"kind": "usage", "usage": cast(Usage, summed)})
        if failed:
            why = obj.get("error") or (result if isinstance(result, str) and result else None)
            errors = obj.get("errors")
            if not why and isinstance(errors, list) and errors:
                why = "; ".join(str(e) for e in errors)
            self.error = str(why or obj.get("subtype") or "the agent reported an error")
            out.append({"kind": "error", "text": self.error})
        self.turn_text = False
        self.message_usage = {}
        return out

    def _summed_message_usage(self, cost: Any) -> dict[str, Any]:
        total: dict[str, Any] = {}
        for usage in self.message_usage.values():
            for key, value in normalize_usage(usage).items():
                total[key] = total.get(key, 0) + value
        if usage_number(cost):
            total["cost_usd"] = float(cost)
        return total

    # tool calls --------------------------------------------------------------------------

    def tool_start(self, call_id: str, name: str, args: Any) -> Entry:
        action = tool_action(name)
        entry: Entry = {"kind": "tool_call", "id": call_id, "tool": name,
                        "action": action.value,
                        "target": tool_target(name, action, args, self.cwd),
                        "status": "running"}
        if args:
            entry["data"] = {"input": args}
        self.pending[call_id] = entry
        return entry

    def tool_end(self, call_id: str, ok: bool, output: str,
                 tool: str | None = None) -> Entry:
        start = self.pending.pop(call_id, None)
        if start is None:  # a result whose call we never saw: still a tool call
            name = tool or "unknown"
            action = tool_action(name)
            start = {"kind": "tool_call", "id": call_id, "tool": name,
                     "action": action.value, "target": ""}
        return {"kind": "tool_call", "id": call_id, "tool": start["tool"],
                "action": start["action"], "target": start["target"],
                "status": "ok" if ok else "error", "output": output}

    def tool_result(self, block: Mapping[str, Any]) -> list[Entry]:
        call_id = str(block.get("tool_use_id") or block.get("id") or "")
        return [self.tool_end(call_id, not block.get("is_error"),
                              result_text(block.get("content")))]

    def finish(self) -> list[Entry]:
        """Tool calls still open when the agent stopped end as errors (same id)."""
        return [self.tool_end(call_id, False, UNFINISHED_CALL) for call_id in list(self.pending)]
